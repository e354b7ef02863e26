/**
 * Issue 7, arming a real daemon: PLINTH_FAILPOINTS at start is logged at
 * warn with the armed list; the test-only API exists only with
 * PLINTH_TEST_API=1 (404 otherwise, even with the token); a bad spec stops
 * the start with one clear line.
 */
import t from 'tap';
import { makeTempDir, spawnDaemon, startDaemon } from '../helpers/daemon-harness.js';
import { DATA_DIR_PREFIX, failpointStatus } from './fixtures/failpoint-cluster.js';

t.test('PLINTH_FAILPOINTS arms at start and says so; no test API without PLINTH_TEST_API=1', async (t) => {
  const dataDir = await makeTempDir(t, `${DATA_DIR_PREFIX}arming-`);
  const daemon = await startDaemon(t, { dataDir, env: { PLINTH_FAILPOINTS: 'nbd.reply.before-send=stall(1):match=nothing-here' } });
  const warning = daemon.logRecords().find((record) => typeof record.msg === 'string' && record.msg.includes('PLINTH_FAILPOINTS'));
  t.match(warning, { level: 40, failpoints: ['nbd.reply.before-send=stall(1):match=nothing-here'] }, 'the armed list is logged at warn');
  for (const method of ['GET', 'PUT', 'DELETE']) {
    const response = await daemon.api(method, '/v1/debug/failpoints', method === 'PUT' ? { spec: 'pool.write=error' } : undefined);
    t.equal(response.status, 404, `${method} /v1/debug/failpoints is 404 without PLINTH_TEST_API=1`);
  }
});

t.test('with PLINTH_TEST_API=1 the env-armed points show in the test API', async (t) => {
  const dataDir = await makeTempDir(t, `${DATA_DIR_PREFIX}arming-`);
  const daemon = await startDaemon(t, { dataDir, env: { PLINTH_TEST_API: '1', PLINTH_FAILPOINTS: 'raft.apply.before=stall(1):times=1000000' } });
  const [point] = await failpointStatus(daemon);
  t.match(point, { name: 'raft.apply.before', spec: 'raft.apply.before=stall(1):times=1000000' });
  t.ok(point !== undefined && point.fired > 0, `start-up passed the point and it fired (${point?.fired ?? 0} times)`);
});

t.test('a bad PLINTH_FAILPOINTS stops the start with a clear error', async (t) => {
  const dataDir = await makeTempDir(t, `${DATA_DIR_PREFIX}arming-`);
  const daemon = await spawnDaemon(t, { dataDir, env: { PLINTH_FAILPOINTS: 'pool.wirte=crash' } });
  const exit = await daemon.waitForExit({ timeoutMs: 20_000 });
  t.equal(exit.code, 1, 'exit 1');
  t.match(daemon.stderr(), /plinthd: unknown failpoint "pool\.wirte"; known: .*pool\.write.* \(INVALID_ARGUMENT\)/);
});
