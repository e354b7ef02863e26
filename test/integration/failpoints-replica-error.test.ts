/**
 * Issue 7, failpoint class "error": pool.write=error(EIO) on one replica's
 * node (n3; the owner is n1). The owner's write to n3 fails, it commits n3
 * out of the in-sync set through Raft (invariant 2) and acknowledges the
 * client, which sees no error. Volume inspect shows n3 out of the in-sync set
 * (faulted, or already rebuilding again). Disarmed,
 * the owner's reconciler rebuilds n3 and the volume is healthy again; n3's
 * copy then holds every acknowledged write (read there after a forced
 * attach to n3, which reads its local replica first).
 */
import t from 'tap';
import {
  armFailpoints, createVolumeOn, disarmFailpoints, failpointStatus, inspectVolume, startFailpointCluster, verifyAcked,
  waitHealthy, writeAcked, writeAckedClient,
} from './fixtures/failpoint-cluster.js';
import { eventually } from './fixtures/replication-cluster.js';

t.test('EIO on a replica\'s pool writes: the replica is faulted through Raft, the client sees nothing, then it is rebuilt', async (t) => {
  const script = await writeAckedClient(t);
  const [n1, , n3] = await startFailpointCluster(t);
  const volume = await createVolumeOn(t, n1, 'fpc', '64MiB', 3);

  const before = await writeAcked(script, n1.nbdUri('fpc'), { count: 50, seed: 1, flushEvery: 10 });
  t.ok(before.done, `first writes done (${before.error ?? 'no error'})`);
  t.match(await inspectVolume(n1, 'fpc'), { attachedTo: 'n1', state: 'healthy' });

  await armFailpoints(t, n3, `pool.write=error(EIO):match=${volume.id}`);
  const during = await writeAcked(script, n1.nbdUri('fpc'), { count: 100, seed: 2, flushEvery: 10, firstBlock: 8192 });
  t.ok(during.done, `the client saw no error while n3 failed its writes (${during.error ?? 'no error'})`);
  t.equal(during.acked.size, 100, 'every write acknowledged');
  const faulted = await inspectVolume(n1, 'fpc');
  t.equal(faulted.state, 'degraded', 'the volume is degraded');
  // The owner's repair pass may already have moved n3 on to rebuilding (it fails again while armed).
  t.match(faulted.replicas, [{ nodeId: 'n1', state: 'in-sync' }, { nodeId: 'n2', state: 'in-sync' }, { nodeId: 'n3', state: /^(faulted|rebuilding)$/ }], 'n3 left the in-sync set (committed)');
  t.match(await inspectVolume(n3, 'fpc'), { state: 'degraded' }, 'n3 itself sees the committed fault');
  const [point] = await failpointStatus(n3);
  t.ok(point !== undefined && point.fired >= 1, `the failpoint fired on n3 (${JSON.stringify(point)})`);

  await disarmFailpoints(t, n3);
  await waitHealthy(n1, 'fpc', 30_000);
  t.pass('n3 rebuilt and back in sync once the fault was disarmed');

  const acked = new Map([...before.acked, ...during.acked]);
  const throughOwner = await verifyAcked(t, script, n1.nbdUri('fpc'), acked);
  t.same({ checked: throughOwner.checked, bad: throughOwner.bad }, { checked: acked.size, bad: [] }, 'every acknowledged write reads back through the owner');

  const moved = await n3.api('POST', '/v1/volumes/fpc/attach', { node: 'n3', force: true }, { timeoutMs: 20_000 });
  t.equal(moved.status, 200, `forced attach on n3: ${JSON.stringify(moved.body)}`);
  const onN3 = await eventually('n3 to serve the volume', 20_000, async () => verifyAcked(t, script, n3.nbdUri('fpc'), acked));
  t.same(onN3.bad, [], 'n3\'s rebuilt replica holds every acknowledged write');
});
