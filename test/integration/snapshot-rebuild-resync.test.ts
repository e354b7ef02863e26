/**
 * Issue 8 "rebuilt with it", the short-outage case (docs/snapshots.md
 * "Rebuilds"): a replica whose node was down while s2 was taken comes back
 * and is caught up by delta resync. Before that, the owner copies s2 into it
 * (its volume zeroed, then every extent of s2) and commits it as a holder;
 * then it restores the replica's live data wherever it wrote (here: all of
 * it), so the delta catch-up leaves the replica identical to the others. Three daemons,
 * a 3-replica volume: pattern A, s1, node down (-9), B, s2, C, node back.
 */
import t from 'tap';
import { startDaemon, type DaemonProcess } from '../helpers/daemon-harness.js';
import { ENV, eventually, startCluster } from './fixtures/replication-cluster.js';
import { exportSources, patternClient, PATTERN_BLOCKS, snapshotViews, takeSnapshot, volumeView } from './fixtures/snapshot-rebuild-fixture.js';

const S1_LAYOUT = `A:0:${PATTERN_BLOCKS}`;
const S2_LAYOUT = `A:0:32,B:32:64,A:96:${PATTERN_BLOCKS - 96}`;
const LIVE_LAYOUT = `C:0:48,B:48:48,A:96:${PATTERN_BLOCKS - 96}`;

t.test('a replica that was down while a snapshot was taken gets it when it comes back', { timeout: 90_000 }, async (t) => {
  const py = await patternClient(t);
  const members = await startCluster(t, { dataDirPrefix: 'plinth-snaprs-', logLevel: 'info' });
  const [n1] = members;
  const byId = new Map<string, DaemonProcess>(members.map((member, index) => [`n${index + 1}`, member]));
  const created = await n1.api('POST', '/v1/volumes', { name: 'snaprs', size: '32MiB', replicas: 3 });
  t.equal(created.status, 201, JSON.stringify(created.body));
  const placed = (created.body as { replicas: { nodeId: string }[] }).replicas.map((replica) => replica.nodeId);
  const [ownerId, awayId, otherId] = placed;
  const owner = ownerId === undefined ? undefined : byId.get(ownerId);
  const away = awayId === undefined ? undefined : byId.get(awayId);
  if (owner === undefined || away === undefined || awayId === undefined || otherId === undefined) throw new Error(`unexpected placement ${placed.join(',')}`);
  t.comment(`owner ${String(ownerId)}, away ${awayId}, other ${otherId}`);

  t.same(await py(['pattern', owner.nbdUri('snaprs'), 'A', '0', String(PATTERN_BLOCKS)]), { written: PATTERN_BLOCKS });
  await takeSnapshot(t, owner, 'snaprs', 's1');
  await away.kill();
  t.same(await py(['pattern', owner.nbdUri('snaprs'), 'B', '32', '64']), { written: 64 });
  const s2 = await takeSnapshot(t, owner, 'snaprs', 's2');
  t.same([...s2.holders].sort(), [ownerId, otherId].sort(), 's2 is taken on the two in-sync replicas');
  t.same(await py(['pattern', owner.nbdUri('snaprs'), 'C', '0', '48']), { written: 48 });

  const back = await startDaemon(t, { dataDir: away.dataDir, ports: away.ports, args: ['--node-id', awayId], env: ENV, logLevel: 'info' });
  await eventually(`${awayId} back in sync`, 45_000, async () => {
    const view = await volumeView(owner, 'snaprs');
    return view.state === 'healthy' && view.replicas.every((replica) => replica.state === 'in-sync') ? view : undefined;
  }).catch(async (error: unknown) => {
    throw new Error(`${error instanceof Error ? error.message : String(error)}; now: ${JSON.stringify(await volumeView(owner, 'snaprs'))}`);
  });

  const snapshots = await snapshotViews(back, 'snaprs');
  for (const snapshot of snapshots) {
    t.same([...snapshot.holders].sort(), [...placed].sort(), `${snapshot.name} held by all three replicas`);
    t.equal(snapshot.space?.measuredOn, awayId, `${snapshot.name} is in ${awayId}'s pool`);
  }
  const copies = owner.logRecords().filter((record) => record['msg'] === 'snapshot copied to the replica and recorded' && record['replica'] === awayId);
  t.same(copies.map((record) => [record['snapshot'], record['incrementalFrom']]), [['s2', null]], 'only s2 was copied, in full (the first one of the run)');
  t.ok(owner.logMessages().includes('live data restored where snapshot content was written'), 'the replica\'s live data was restored before its delta catch-up');
  t.match(await py(['verify', back.nbdUri('snaprs@s2'), S2_LAYOUT]), { badCount: 0, readOnly: true }, `snaprs@s2 on ${awayId} reads A with B over its middle`);
  t.match(await py(['verify', back.nbdUri('snaprs@s1'), S1_LAYOUT]), { badCount: 0, readOnly: true }, `snaprs@s1 on ${awayId} still reads A`);
  t.same(exportSources(back, 'snaprs@s2'), ['local pool'], `${awayId} served s2 from its own copy`);

  // The replica's own live copy: move the volume there (a forced attach) and read it through its node.
  const moved = await back.api('POST', '/v1/volumes/snaprs/attach', { node: awayId, force: true }, { timeoutMs: 20_000 });
  t.equal(moved.status, 200, `forced attach on ${awayId}: ${JSON.stringify(moved.body)}`);
  t.match(await py(['verify', back.nbdUri('snaprs'), LIVE_LAYOUT]), { badCount: 0, readOnly: false }, `the volume read on ${awayId} is C, B, A`);
});
