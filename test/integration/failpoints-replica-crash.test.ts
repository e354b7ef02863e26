/**
 * Issue 7, failpoint class "crash": replica.write.before-ack=crash on the
 * owner's node n1. Its local replica stored the write, the process dies
 * before any reply, so the client's write fails (connection lost). After
 * failover to n2 (new generation, failover resync, invariants 3 and 4) every
 * acknowledged write reads back intact; n1 restarted is rebuilt and the
 * volume converges healthy.
 */
import t from 'tap';
import {
  armFailpoints, createVolumeOn, startFailpointCluster, startFailpointMember, verifyAcked, waitHealthy, writeAcked, writeAckedClient,
} from './fixtures/failpoint-cluster.js';
import { eventually } from './fixtures/replication-cluster.js';

const CRASH_AFTER_WRITES = 120;

t.test('the owner crashes after a replica write, before its ack: acknowledged writes survive failover', async (t) => {
  const script = await writeAckedClient(t);
  const [n1, n2] = await startFailpointCluster(t);
  const volume = await createVolumeOn(t, n1, 'fpa', '64MiB', 3);

  await armFailpoints(t, n1, `replica.write.before-ack=crash:skip=${CRASH_AFTER_WRITES}:match=${volume.id}`);
  const run = await writeAcked(script, n1.nbdUri('fpa'), { count: 400, seed: 3, flushEvery: 16 });
  t.equal(run.done, false, 'the run did not complete');
  t.ok(run.error !== undefined, `the client's write failed: ${run.error ?? ''}`);
  t.ok(run.unacknowledged !== undefined, `one write was in flight and never acknowledged (offset ${run.unacknowledged})`);
  t.ok(run.acked.size >= CRASH_AFTER_WRITES - 5 && run.acked.size <= CRASH_AFTER_WRITES, `${run.acked.size} writes acknowledged before the crash`);
  const exit = await n1.waitForExit({ timeoutMs: 10_000 });
  t.equal(exit.signal, 'SIGKILL', 'n1 crashed itself (SIGKILL) at the failpoint');
  t.match(n1.stderr(), /failpoint replica\.write\.before-ack: crashing/, 'and said so on stderr');

  const killedAt = Date.now();
  const verified = await eventually('n2 to serve the volume after failover', 40_000, async () => verifyAcked(t, script, n2.nbdUri('fpa'), run.acked));
  t.same({ checked: verified.checked, bad: verified.bad }, { checked: run.acked.size, bad: [] }, 'every acknowledged write is intact on the new owner');
  t.comment(`failover took ${Date.now() - killedAt} ms`);
  t.match(await n2.api('GET', '/v1/volumes/fpa'), { body: { attachedTo: 'n2', state: 'degraded' } }, 'n2 owns the volume; n1 is out of the in-sync set');

  await startFailpointMember(t, 'n1', { restartOf: n1 });
  const healthy = await waitHealthy(n2, 'fpa', 40_000);
  t.ok(healthy.generation >= 2, `n1 rebuilt; the volume is healthy again at generation ${healthy.generation}`);
  const again = await verifyAcked(t, script, n2.nbdUri('fpa'), run.acked);
  t.same(again.bad, [], 'still intact after the rebuild');
});
