/**
 * Issue 7, disk fault class "a disk that fills": `disk.write=error(ENOSPC)`
 * with no `match`, so every pwrite of that node's pool disk fails with
 * NO_SPACE, as a full disk under a thin pool would (docs/testing.md "Power
 * loss and disk faults").
 *
 * 1. A replica node's disk (n3; owner n1): the owner's write to n3 fails, it
 *    commits n3 out of the in-sync set through Raft before acknowledging
 *    (invariant 2), so the client sees no error and the volume is degraded.
 *    Rebuilds of n3 fail while the disk stays full; once space is back
 *    (disarmed) n3 is rebuilt and its own copy holds every acknowledged write.
 * 2. The owner's own disk (n1): the controller treats its local replica like
 *    any other (blockdev/volume/replicated-volume.ts onReplicaError): it is
 *    committed out, the write is acknowledged by n2 and n3, reads are served
 *    by them, and the client sees no error — no ENOSPC reaches it while
 *    another in-sync replica has room. Disarmed, n1's replica is rebuilt and
 *    n1 reads every acknowledged write from its local copy again.
 */
import t from 'tap';
import {
  armFailpoints, createVolumeOn, disarmFailpoints, failpointStatus, inspectVolume, startFailpointCluster, verifyAcked,
  verifyOnNode, waitHealthy, waitReplicaState, writeAcked, writeAckedClient,
} from './fixtures/failpoint-cluster.js';

const DISK_FULL = 'disk.write=error(ENOSPC)';

t.test('a disk that fills, on a replica node and on the owner: the client sees no error, nothing acknowledged is lost', async (t) => {
  const script = await writeAckedClient(t);
  const [n1, n2, n3] = await startFailpointCluster(t);

  await t.test('the disk of a replica node (n3) fills', async (t) => {
    await createVolumeOn(t, n1, 'dfa', '64MiB', 3);
    const before = await writeAcked(script, n1.nbdUri('dfa'), { count: 40, seed: 21, flushEvery: 10 });
    t.ok(before.done, `first writes done (${before.error ?? 'no error'})`);
    t.match(await inspectVolume(n1, 'dfa'), { attachedTo: 'n1', state: 'healthy' });

    await armFailpoints(t, n3, DISK_FULL);
    // From block 8192 (32 MiB) on: extents no replica has allocated yet, so n3 must write to its disk.
    const during = await writeAcked(script, n1.nbdUri('dfa'), { count: 80, seed: 22, flushEvery: 10, firstBlock: 8192 });
    t.ok(during.done, `the client saw no error while n3's disk was full (${during.error ?? 'no error'})`);
    t.equal(during.acked.size, 80, 'every write acknowledged');
    const degraded = await inspectVolume(n1, 'dfa');
    t.equal(degraded.state, 'degraded', 'the volume is degraded');
    t.match(degraded.replicas, [
      { nodeId: 'n1', state: 'in-sync' }, { nodeId: 'n2', state: 'in-sync' }, { nodeId: 'n3', state: /^(faulted|rebuilding)$/ },
    ], 'n3 left the in-sync set through a committed entry');
    const [point] = await failpointStatus(n3);
    t.ok(point !== undefined && point.fired >= 1, `n3's disk refused writes (${JSON.stringify(point)})`);
    // Rebuilds are retried while the disk stays full; none may bring n3 back in sync.
    t.not((await inspectVolume(n2, 'dfa')).state, 'healthy', 'n3 stays out while its disk is full');

    const acked = new Map([...before.acked, ...during.acked]);
    const whileFull = await verifyAcked(t, script, n1.nbdUri('dfa'), acked);
    t.same(whileFull.bad, [], 'every acknowledged write reads back while degraded');

    await disarmFailpoints(t, n3);
    await waitHealthy(n1, 'dfa', 30_000);
    t.pass('n3 rebuilt and back in sync once space was back');
    const onN3 = await verifyOnNode(t, script, n3, 'n3', 'dfa', acked);
    t.same({ checked: onN3.checked, bad: onN3.bad }, { checked: acked.size, bad: [] }, 'n3\'s rebuilt copy holds every acknowledged write');
  });

  await t.test('the owner\'s own disk (n1) fills', async (t) => {
    await createVolumeOn(t, n1, 'dfb', '64MiB', 3);
    const before = await writeAcked(script, n1.nbdUri('dfb'), { count: 40, seed: 23, flushEvery: 10 });
    t.ok(before.done, `first writes done (${before.error ?? 'no error'})`);
    t.match(await inspectVolume(n2, 'dfb'), { attachedTo: 'n1', state: 'healthy' });

    await armFailpoints(t, n1, DISK_FULL);
    const during = await writeAcked(script, n1.nbdUri('dfb'), { count: 80, seed: 24, flushEvery: 10, firstBlock: 8192 });
    t.ok(during.done, `the client saw no error while its owner's disk was full (${during.error ?? 'no error'})`);
    t.equal(during.acked.size, 80, 'every write acknowledged by the other two replicas');
    const degraded = await waitReplicaState(n2, 'dfb', 'n1', ['faulted', 'rebuilding'], 10_000);
    t.match(degraded, { attachedTo: 'n1', state: 'degraded' }, 'n1 still owns the volume, its own replica is out (committed)');
    t.match(degraded.replicas, [{ nodeId: 'n1' }, { nodeId: 'n2', state: 'in-sync' }, { nodeId: 'n3', state: 'in-sync' }]);

    const acked = new Map([...before.acked, ...during.acked]);
    const served = await verifyAcked(t, script, n1.nbdUri('dfb'), acked);
    t.same({ checked: served.checked, bad: served.bad }, { checked: acked.size, bad: [] }, 'reads through n1 are served by n2/n3');

    await disarmFailpoints(t, n1);
    const healed = await waitHealthy(n1, 'dfb', 30_000);
    t.match(healed, { attachedTo: 'n1' }, 'n1 rebuilt its own replica and still owns the volume');
    const local = await verifyAcked(t, script, n1.nbdUri('dfb'), acked);
    t.same({ checked: local.checked, bad: local.bad }, { checked: acked.size, bad: [] }, 'n1\'s rebuilt local copy holds every acknowledged write');
  });
});
