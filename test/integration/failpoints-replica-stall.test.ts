/**
 * Issue 7, failpoint class "stall": replica.write.before-ack=stall(5000) on
 * a replica's node (n3; owner n1) for two writes. The owner waits for n3
 * (invariant 1: a write is acknowledged once every in-sync replica has it),
 * so those writes are delayed, but none hangs past the controller's replica
 * timeout (10 s, daemon/volume/volume-session.ts): a slower replica would be
 * faulted instead. Nothing acknowledged is lost, on the owner or on n3.
 */
import t from 'tap';
import {
  armFailpoints, createVolumeOn, failpointStatus, inspectVolume, startFailpointCluster, verifyAcked, waitHealthy, writeAcked,
  writeAckedClient,
} from './fixtures/failpoint-cluster.js';
import { eventually } from './fixtures/replication-cluster.js';

const STALL_MS = 5000;
const CONTROLLER_TIMEOUT_MS = 10_000;

t.test('a replica stalls 5 s before acking: writes are delayed, none hangs, nothing is lost', async (t) => {
  const script = await writeAckedClient(t);
  const [n1, , n3] = await startFailpointCluster(t);
  const volume = await createVolumeOn(t, n1, 'fpd', '64MiB', 3);

  await armFailpoints(t, n3, `replica.write.before-ack=stall(${STALL_MS}):skip=10:times=2:match=${volume.id}`);
  const startedMs = Date.now();
  const run = await writeAcked(script, n1.nbdUri('fpd'), { count: 60, seed: 6, flushEvery: 10 }, 60_000);
  t.ok(run.done, `every write completed (${run.error ?? 'no error'})`);
  t.equal(run.acked.size, 60, 'all 60 acknowledged');
  t.ok(run.maxWriteMs >= STALL_MS - 500, `the stall was felt: slowest write ${run.maxWriteMs} ms`);
  t.ok(run.maxWriteMs < CONTROLLER_TIMEOUT_MS + 2000, `no write hung past the controller's timeout (slowest ${run.maxWriteMs} ms)`);
  t.comment(`60 writes took ${Date.now() - startedMs} ms`);
  t.same(await failpointStatus(n3), [], 'the stall fired twice and disarmed itself');

  const view = await inspectVolume(n1, 'fpd');
  t.ok(view.state === 'healthy' || view.state === 'degraded', `volume ${view.state}: n3 either kept up or was faulted`);
  await waitHealthy(n1, 'fpd', 30_000);
  const throughOwner = await verifyAcked(t, script, n1.nbdUri('fpd'), run.acked);
  t.same({ checked: throughOwner.checked, bad: throughOwner.bad }, { checked: 60, bad: [] }, 'every acknowledged write reads back');
  const moved = await n3.api('POST', '/v1/volumes/fpd/attach', { node: 'n3', force: true }, { timeoutMs: 20_000 });
  t.equal(moved.status, 200, 'forced attach on n3');
  const onN3 = await eventually('n3 to serve the volume', 20_000, async () => verifyAcked(t, script, n3.nbdUri('fpd'), run.acked));
  t.same(onN3.bad, [], 'n3, the stalled replica, holds every acknowledged write');
});
