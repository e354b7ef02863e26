/**
 * Issue 7, disk faults: "the controller drops it from the in-sync set through
 * Raft and rebuilds elsewhere". Four nodes, a 3-replica volume with a short
 * grace period (`grace: '3s'`); one replica's node keeps failing every write
 * to the volume (`pool.write=error(EIO):match=<id>`, armed for good). The node
 * itself stays up: its disk is bad, not its network.
 *
 * The client sees no error (invariant 2). Rebuilding the replica in place
 * keeps failing; once it has been out longer than the grace period, the
 * replacement rules (daemon/reconciler/replica-replacement.ts) add a replica
 * on the fourth node, it is rebuilt by a full copy and committed in sync,
 * and the bad one is removed: healthy again on {owner, other, fourth}. The
 * fourth node's own copy holds every acknowledged write.
 *
 * replication-resync-grace.test.ts covers replacement of a replica whose
 * node is down (in process); this is the live node with a failing disk.
 */
import t from 'tap';
import {
  armFailpoints, createVolumeOn, inspectVolume, startFailpointMembers, verifyAcked, verifyOnNode, writeAcked,
  writeAckedClient,
} from './fixtures/failpoint-cluster.js';
import { eventually } from './fixtures/replication-cluster.js';

const GRACE = '3s';

t.test('a replica whose disk keeps failing is replaced on the fourth node after its grace period', async (t) => {
  const script = await writeAckedClient(t);
  const nodes = await startFailpointMembers(t, 4);
  const byId = new Map(nodes.map((node, index) => [`n${index + 1}`, node]));
  const [first] = nodes;
  if (first === undefined) throw new Error('no nodes');
  const created = await createVolumeOn(t, first, 'dfe', '32MiB', 3, { grace: GRACE });
  const holders = created.replicas.map((replica) => replica.nodeId);
  const [ownerId, badId, otherId] = holders;
  const fourthId = [...byId.keys()].find((id) => !holders.includes(id));
  const owner = ownerId === undefined ? undefined : byId.get(ownerId);
  const bad = badId === undefined ? undefined : byId.get(badId);
  const fourth = fourthId === undefined ? undefined : byId.get(fourthId);
  if (ownerId === undefined || badId === undefined || otherId === undefined || fourthId === undefined || owner === undefined || bad === undefined || fourth === undefined) {
    throw new Error(`unexpected placement ${JSON.stringify(holders)}`);
  }
  t.comment(`replicas on ${holders.join(', ')}; owner ${ownerId}, failing ${badId}, spare ${fourthId}`);

  // Connecting through a replica's node attaches the volume there.
  const before = await writeAcked(script, owner.nbdUri('dfe'), { count: 30, seed: 41, flushEvery: 10 });
  t.ok(before.done, `first writes done (${before.error ?? 'no error'})`);
  t.match(await inspectVolume(owner, 'dfe'), { attachedTo: ownerId, state: 'healthy' });

  await armFailpoints(t, bad, `pool.write=error(EIO):match=${created.id}`);
  const during = await writeAcked(script, owner.nbdUri('dfe'), { count: 60, seed: 42, flushEvery: 10, firstBlock: 4096 });
  t.ok(during.done, `the client saw no error while ${badId} failed its writes (${during.error ?? 'no error'})`);
  t.equal(during.acked.size, 60, 'every write acknowledged');

  const replaced = await eventually('the volume healthy again without the failing replica', 30_000, async () => {
    const view = await inspectVolume(owner, 'dfe');
    const on = view.replicas.map((replica) => replica.nodeId).sort();
    return view.state === 'healthy' && !on.includes(badId) ? view : undefined;
  }).catch(async (error: unknown) => {
    throw new Error(`${error instanceof Error ? error.message : String(error)}; now: ${JSON.stringify(await inspectVolume(owner, 'dfe'))}`);
  });
  t.same(replaced.replicas.map((replica) => replica.nodeId).sort(), [ownerId, otherId, fourthId].sort(), 'replicas on {owner, other, fourth}');
  t.equal(replaced.attachedTo, ownerId, 'the owner did not change');

  const acked = new Map([...before.acked, ...during.acked]);
  const throughOwner = await verifyAcked(t, script, owner.nbdUri('dfe'), acked);
  t.same({ checked: throughOwner.checked, bad: throughOwner.bad }, { checked: acked.size, bad: [] }, 'every acknowledged write reads back through the owner');
  const onFourth = await verifyOnNode(t, script, fourth, fourthId, 'dfe', acked);
  t.same(onFourth.bad, [], `the replacement on ${fourthId} holds every acknowledged write`);
});
