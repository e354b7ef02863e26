/**
 * Issue 8 "snapshots survive node loss like their volume and are rebuilt
 * with it" (docs/snapshots.md "Rebuilds"). Four daemons, a 3-replica volume
 * with a 3 s grace period: pattern A, snapshot s1, pattern B over part of
 * it, snapshot s2; a replica node is killed (-9) for good, then pattern C. The
 * owner replaces it on the fourth node (daemon/reconciler/
 * rebuild-reconciler.ts), which first gets s1 and s2 copied into it
 * (daemon/snapshots/snapshot-rebuild.ts) and committed as a holder. The
 * fourth node then serves `vol@s1` and `vol@s2` from its own pool, A and B
 * bit for bit, and the volume itself (C) from the owner.
 */
import t from 'tap';
import type { DaemonProcess } from '../helpers/daemon-harness.js';
import { eventually, startMember } from './fixtures/replication-cluster.js';
import { exportSources, patternClient, PATTERN_BLOCKS, snapshotViews, takeSnapshot, volumeView } from './fixtures/snapshot-rebuild-fixture.js';

const PREFIX = 'plinth-snaprb-';
/** Layouts as the client's verify takes them: B overwrites the middle of A, C the start. */
const S1_LAYOUT = `A:0:${PATTERN_BLOCKS}`;
const S2_LAYOUT = `A:0:32,B:32:64,A:96:${PATTERN_BLOCKS - 96}`;
const LIVE_LAYOUT = `C:0:48,B:48:48,A:96:${PATTERN_BLOCKS - 96}`;

t.test('a replacement replica on a new node gets the volume\'s snapshots, bit for bit', { timeout: 90_000 }, async (t) => {
  const py = await patternClient(t);
  const n1 = await startMember(t, 'n1', undefined, 'info', PREFIX);
  const n2 = await startMember(t, 'n2', n1, 'info', PREFIX);
  const n3 = await startMember(t, 'n3', n2, 'info', PREFIX);
  const n4 = await startMember(t, 'n4', n3, 'info', PREFIX);
  const byId = new Map<string, DaemonProcess>([['n1', n1], ['n2', n2], ['n3', n3], ['n4', n4]]);
  const created = await n1.api('POST', '/v1/volumes', { name: 'snaprb', size: '32MiB', replicas: 3, grace: '3s' });
  t.equal(created.status, 201, JSON.stringify(created.body));
  const placed = (created.body as { replicas: { nodeId: string }[] }).replicas.map((replica) => replica.nodeId);
  const [ownerId, lostId, otherId] = placed;
  const spareId = [...byId.keys()].find((id) => !placed.includes(id));
  const owner = ownerId === undefined ? undefined : byId.get(ownerId);
  const lost = lostId === undefined ? undefined : byId.get(lostId);
  const spare = spareId === undefined ? undefined : byId.get(spareId);
  if (owner === undefined || lost === undefined || spare === undefined || otherId === undefined || spareId === undefined) throw new Error(`unexpected placement ${placed.join(',')}`);
  t.comment(`replicas on ${placed.join(', ')}; owner ${String(ownerId)}, lost ${String(lostId)}, spare ${spareId}`);

  t.same(await py(['pattern', owner.nbdUri('snaprb'), 'A', '0', String(PATTERN_BLOCKS)]), { written: PATTERN_BLOCKS });
  await takeSnapshot(t, owner, 'snaprb', 's1');
  t.same(await py(['pattern', owner.nbdUri('snaprb'), 'B', '32', '64']), { written: 64 });
  await takeSnapshot(t, owner, 'snaprb', 's2');
  await lost.kill();
  // A write after the loss faults the lost replica (the owner learns of it on I/O); its grace period runs from there.
  t.same(await py(['pattern', owner.nbdUri('snaprb'), 'C', '0', '48']), { written: 48 });
  const healed = await eventually('the volume healthy again on the spare node', 45_000, async () => {
    const view = await volumeView(owner, 'snaprb');
    const on = view.replicas.map((replica) => replica.nodeId);
    return view.state === 'healthy' && on.includes(spareId) && !on.includes(String(lostId)) ? view : undefined;
  }).catch(async (error: unknown) => {
    throw new Error(`${error instanceof Error ? error.message : String(error)}; now: ${JSON.stringify(await volumeView(owner, 'snaprb'))}\n${owner.describeOutput().slice(-4000)}`);
  });
  t.same(healed.replicas.map((replica) => replica.nodeId).sort(), [ownerId, otherId, spareId].sort(), 'replicas on {owner, other, spare}');

  const snapshots = await snapshotViews(spare, 'snaprb');
  t.same(snapshots.map((snapshot) => snapshot.name), ['s1', 's2']);
  for (const snapshot of snapshots) {
    t.same([...snapshot.holders].sort(), [ownerId, otherId, spareId].sort(), `${snapshot.name} held by owner, other and the spare`);
    t.equal(snapshot.space?.measuredOn, spareId, `${snapshot.name} is in the spare's pool (its space is measured there)`);
  }
  t.match(await py(['verify', spare.nbdUri('snaprb@s1'), S1_LAYOUT]), { badCount: 0, readOnly: true }, 'snaprb@s1 on the spare reads A');
  t.match(await py(['verify', spare.nbdUri('snaprb@s2'), S2_LAYOUT]), { badCount: 0, readOnly: true }, 'snaprb@s2 on the spare reads A with B over its middle');
  t.same(exportSources(spare, 'snaprb@s1'), ['local pool'], 'the spare served s1 from its own copy');
  t.same(exportSources(spare, 'snaprb@s2'), ['local pool'], 'the spare served s2 from its own copy');
  t.match(await py(['verify', owner.nbdUri('snaprb'), LIVE_LAYOUT]), { badCount: 0, readOnly: false }, 'the volume reads C, B, A');
  const copies = owner.logRecords().filter((record) => record['msg'] === 'snapshot copied to the replica and recorded' && record['replica'] === spareId);
  t.same(copies.map((record) => [record['snapshot'], record['incrementalFrom']]), [['s1', null], ['s2', 's1']], 'the owner copied s1 in full, then s2 as the extents changed since s1');
  // The live catch-up after the copies left the spare's own volume current: move the volume there and read it.
  const moved = await spare.api('POST', '/v1/volumes/snaprb/attach', { node: spareId, force: true }, { timeoutMs: 20_000 });
  t.equal(moved.status, 200, `forced attach on ${spareId}: ${JSON.stringify(moved.body)}`);
  t.match(await py(['verify', spare.nbdUri('snaprb'), LIVE_LAYOUT]), { badCount: 0, readOnly: false }, `the volume read on ${spareId} is C, B, A`);
});
