import t from 'tap';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { buildApiApp } from '../../../api/build-api-app.js';
import { runCli } from '../../../api/cli/run-cli.js';
import type { SnapshotView } from '../../../daemon/control-plane.js';
import { SnapshotControlPlane } from '../../helpers/snapshot-control-plane.js';
import { AUTH_HEADERS, errorOf, TEST_TOKEN } from './api-fixture.js';

/** Issue 8: the snapshot routes, schemas, typed client and CLI over an in-memory control plane. */

async function rig(t: { teardown(fn: () => unknown): void }) {
  const control = new SnapshotControlPlane({ space: { measuredOn: 'node-1', exclusiveBytes: 0, sharedBytes: 4096 } });
  const app = await buildApiApp({ token: TEST_TOKEN, version: '0.1.0-test', logger: pino({ level: 'silent' }) }, { control, metrics: new Registry() });
  t.teardown(() => app.close());
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('expected a TCP address');
  const baseUrl = `http://127.0.0.1:${address.port}`;
  const plinth = async (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
    let stdout = '';
    let stderr = '';
    const code = await runCli(['--api', baseUrl, '--token', TEST_TOKEN, ...args], {
      stdout: { write: (text: string) => (stdout += text) },
      stderr: { write: (text: string) => (stderr += text) },
      env: {},
      cwd: '/nonexistent-cwd',
    });
    return { code, stdout, stderr };
  };
  return { control, app, plinth };
}

t.test('CLI: create, ls, create-group, clone, revert, rm', async (t) => {
  const { control, plinth } = await rig(t);
  await control.createVolume({ name: 'db', sizeBytes: 1 << 20 });
  await control.createVolume({ name: 'wal', sizeBytes: 1 << 20 });
  t.match(await plinth('snapshot', 'create', 'db', 'before-upgrade'), { code: 0, stdout: /created snapshot db@before-upgrade on node-1/ });
  const listed = await plinth('snapshot', 'ls', 'db');
  t.equal(listed.code, 0);
  t.match(listed.stdout, /NAME\s+CREATED\s+SIZE\s+HOLDERS\s+EXCLUSIVE\s+SHARED/);
  t.match(listed.stdout, /before-upgrade .* 1MiB\s+node-1\s+0B\s+4KiB/);
  t.match(await plinth('snapshot', 'create-group', 'g1', 'db,wal'), { code: 0, stdout: /group snapshot g1 \(group-1\) of db, wal/ });
  t.match(await plinth('volume', 'clone', 'db@before-upgrade', 'db-test'), { code: 0, stdout: /created volume db-test from db@before-upgrade/ });
  t.match(await plinth('volume', 'clone', 'db', 'db-test2'), { code: 2, stderr: /SOURCE@SNAPSHOT/ });
  t.match(await plinth('volume', 'revert', 'db', 'before-upgrade'), { code: 0, stdout: /reverted volume db to before-upgrade/ });
  t.match(await plinth('snapshot', 'rm', 'db', 'before-upgrade'), { code: 0, stdout: /removed snapshot db@before-upgrade/ });
  t.match(await plinth('snapshot', 'rm', 'db', 'before-upgrade'), { code: 1, stderr: /SNAPSHOT_NOT_FOUND/ });
  const json = await plinth('--json', 'snapshot', 'ls', 'db');
  t.same((JSON.parse(json.stdout) as { snapshots: SnapshotView[] }).snapshots.map((item) => item.name), ['g1']);
});

t.test('REST: schemas refuse bad names; statuses from the error table', async (t) => {
  const { control, app } = await rig(t);
  await control.createVolume({ name: 'db', sizeBytes: 1 << 20 });
  const post = (url: string, payload: unknown) => app.inject({ method: 'POST', url, headers: AUTH_HEADERS, payload: payload as Record<string, unknown> });
  t.equal((await post('/v1/volumes/db/snapshots', { name: 's1' })).statusCode, 201);
  t.equal(errorOf(await post('/v1/volumes/db/snapshots', { name: 's1' })).code, 'SNAPSHOT_EXISTS');
  t.equal((await post('/v1/volumes/db/snapshots', { name: 's1' })).statusCode, 409);
  for (const name of ['', 'a@b', '-x', 'x'.repeat(64)]) t.equal((await post('/v1/volumes/db/snapshots', { name })).statusCode, 400, JSON.stringify(name));
  t.equal((await post('/v1/volumes/db/snapshots', { name: 's2', extra: 1 })).statusCode, 400, 'closed body');
  const missing = await app.inject({ method: 'GET', url: '/v1/volumes/db/snapshots/nope', headers: AUTH_HEADERS });
  t.equal(missing.statusCode, 404);
  t.equal(errorOf(missing).code, 'SNAPSHOT_NOT_FOUND');
  t.equal((await post('/v1/volumes/db/snapshots/s1/clone', { name: 'Bad_Name' })).statusCode, 400);
  t.equal((await post('/v1/snapshot-groups', { name: 'g', volumes: [] })).statusCode, 400, 'a group names at least one volume');
  await control.attachVolume('db', 'node-2');
  const revert = await app.inject({ method: 'POST', url: '/v1/volumes/db/snapshots/s1/revert', headers: AUTH_HEADERS });
  t.equal(revert.statusCode, 409);
  t.match(errorOf(revert).message, /node-2/);
  const noToken = await app.inject({ method: 'GET', url: '/v1/volumes/db/snapshots' });
  t.equal(noToken.statusCode, 401);
});
