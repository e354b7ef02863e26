/**
 * Issue 7, disk faults: a read error on the owner's own disk. disk.read
 * error(EIO) on disk extent 1 of n1 — the first extent its pool handed out,
 * so it holds the volume's first writes. n1 owns a 3-replica volume and
 * reads its local replica first; the failed read is served from another
 * in-sync replica (the client sees no error), n1's replica is reported out
 * of the in-sync set through Raft, and once the fault is disarmed the
 * reconciler rebuilds it. Reads through n1 then come from its repaired
 * local copy again and match every acknowledged write.
 */
import t from 'tap';
import {
  armFailpoints, createVolumeOn, disarmFailpoints, failpointStatus, inspectVolume, startFailpointCluster, verifyAcked,
  waitHealthy, writeAcked, writeAckedClient,
} from './fixtures/failpoint-cluster.js';
import { eventually } from './fixtures/replication-cluster.js';

t.test('EIO on a disk extent of the owner\'s replica: the read is served elsewhere, the replica faulted and rebuilt', async (t) => {
  const script = await writeAckedClient(t);
  // info: the owner's "replica left the in-sync set (committed)" record is the proof when the rebuild is quicker than a poll.
  const [n1] = await startFailpointCluster(t, 'info');
  await createVolumeOn(t, n1, 'dfr', '64MiB', 3);

  const written = await writeAcked(script, n1.nbdUri('dfr'), { count: 60, seed: 11, flushEvery: 20 });
  t.ok(written.done, `writes done (${written.error ?? 'no error'})`);
  await waitHealthy(n1, 'dfr', 20_000);

  await armFailpoints(t, n1, 'disk.read=error(EIO):match=1');
  const during = await verifyAcked(t, script, n1.nbdUri('dfr'), written.acked);
  t.same({ checked: during.checked, bad: during.bad }, { checked: written.acked.size, bad: [] }, 'every block read back right while n1\'s disk failed');
  const [point] = await failpointStatus(n1);
  t.ok(point !== undefined && point.fired >= 1, `n1's disk failed a read (${JSON.stringify(point)})`);
  // The rebuild does not read the failing extent, so n1 may be faulted and back in sync between two polls.
  const faulted = await eventually('n1 out of the in-sync set', 20_000, async () => {
    const view = await inspectVolume(n1, 'dfr');
    const outNow = view.replicas.some((replica) => replica.nodeId === 'n1' && replica.state !== 'in-sync');
    const leftCommitted = n1.logRecords().some((record) => record.msg === 'replica left the in-sync set (committed)' && record.replicaId === 'n1');
    return outNow || leftCommitted ? view : undefined;
  });
  t.match(faulted, { attachedTo: 'n1' }, `n1 still owns the volume; replicas ${JSON.stringify(faulted.replicas)}`);

  await disarmFailpoints(t, n1);
  const healed = await waitHealthy(n1, 'dfr', 40_000);
  t.match(healed.replicas, [{ nodeId: 'n1', state: 'in-sync' }, { nodeId: 'n2', state: 'in-sync' }, { nodeId: 'n3', state: 'in-sync' }], 'rebuilt');
  const after = await verifyAcked(t, script, n1.nbdUri('dfr'), written.acked);
  t.same({ checked: after.checked, bad: after.bad }, { checked: written.acked.size, bad: [] }, 'n1\'s repaired local replica holds every acknowledged write');
});
