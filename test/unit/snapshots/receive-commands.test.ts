import t from 'tap';
import { findVolume, type ClusterState } from '../../../daemon/state/cluster-state.js';
import { decodeCommand } from '../../../daemon/state/commands.js';
import { assertNotReceiving, findReceivedSnapshot, type ReceiveSource } from '../../../daemon/state/receive-commands.js';
import { ok, refused, withNodes } from '../daemon/helpers/cluster-state-fixture.js';

/** The receive commands of the cluster state (receive-commands.ts): hidden while receiving, forward-only progress, incremental bases by source id. */

const AT = '2026-11-26T00:00:00.000Z';
const DIGEST = 'ab'.repeat(32);

function source(overrides: Partial<ReceiveSource> = {}): ReceiveSource {
  return {
    sourceClusterId: 'cluster-a', sourceVolumeId: 'src-id', sourceVolumeName: 'db', snapshotName: 's1', sourceSnapshotId: 'src-s1',
    baseSourceSnapshotId: null, totalChunkCount: 10, volumeSizeBytes: 1024 ** 2, ...overrides,
  };
}

function started(): ClusterState {
  return ok(withNodes(['n1', 'n2'], AT), { type: 'volume.receive-start', name: 'copy', nodeId: 'n1', at: AT, source: source(), create: { id: 'id-copy', sizeBytes: 1024 ** 2, replicaCount: 2 } }).state;
}

/** The full receive of s1 completed: snapshot s1 taken, receive finished. */
function received(): ClusterState {
  let state = ok(started(), { type: 'volume.receive-progress', name: 'copy', nextChunk: 10, chainDigestHex: DIGEST, minOffsetBytes: 1024 ** 2 }).state;
  state = ok(state, { type: 'snapshot.create', name: 'copy', snapshotId: 'local-s1', snapshotName: 's1', createdAt: AT, generation: 0, holders: ['n1', 'n2'] }).state;
  return ok(state, { type: 'volume.receive-finish', name: 'copy' }).state;
}

t.test('a full receive creates the volume marked receiving in one entry; exports refuse it', async (t) => {
  const volume = findVolume(started(), 'copy');
  t.match(volume, { id: 'id-copy', sizeBytes: 1024 ** 2, replicaCount: 2, receive: { progress: { nextChunk: 0 }, baseSnapshotName: null } });
  if (volume === undefined) return;
  t.throws(() => assertNotReceiving(volume), { code: 'RECEIVE_CONFLICT' });
  t.match(refused(started(), { type: 'volume.receive-start', name: 'copy', nodeId: 'n1', at: AT, source: source(), create: { id: 'id-2', sizeBytes: 1024 ** 2 } }), { code: 'VOLUME_EXISTS' });
  t.match(refused(withNodes(['n1'], AT), { type: 'volume.receive-start', name: 'x', nodeId: 'n1', at: AT, source: { ...source(), totalChunkCount: -1 }, create: { id: 'i', sizeBytes: 512 } }), { code: 'INVALID_ARGUMENT' });
  t.throws(() => decodeCommand({ type: 'volume.receive-start', name: 'x', nodeId: 'n1', at: AT, source: 'nope' }), { code: 'INVALID_ARGUMENT' });
});

t.test('only the receiving node may attach a receiving volume; resume moves it to another node', async (t) => {
  const state = started();
  t.match(refused(state, { type: 'volume.attach', name: 'copy', nodeId: 'n2' }), { code: 'RECEIVE_CONFLICT' }, 'an NBD client elsewhere cannot attach it');
  const writing = ok(state, { type: 'volume.attach', name: 'copy', nodeId: 'n1' }).state;
  t.match(refused(writing, { type: 'volume.receive-resume', name: 'copy', nodeId: 'n2' }), { code: 'VOLUME_ATTACHED' }, 'not while n1 still writes');
  const moved = ok(ok(writing, { type: 'volume.detach', name: 'copy' }).state, { type: 'volume.receive-resume', name: 'copy', nodeId: 'n2' }).state;
  t.equal(findVolume(moved, 'copy')?.receive?.nodeId, 'n2');
  t.match(refused(moved, { type: 'volume.attach', name: 'copy', nodeId: 'n1' }), { code: 'RECEIVE_CONFLICT' });
  ok(moved, { type: 'volume.attach', name: 'copy', nodeId: 'n2' });
  const done = received();
  ok(done, { type: 'volume.attach', name: 'copy', nodeId: 'n2' });
});

t.test('progress only moves forward; finish needs every chunk and the snapshot', async (t) => {
  let state = ok(started(), { type: 'volume.receive-progress', name: 'copy', nextChunk: 4, chainDigestHex: DIGEST, minOffsetBytes: 4096 }).state;
  t.match(refused(state, { type: 'volume.receive-progress', name: 'copy', nextChunk: 3, chainDigestHex: DIGEST, minOffsetBytes: 0 }), { code: 'INVALID_ARGUMENT' });
  t.match(refused(state, { type: 'volume.receive-progress', name: 'copy', nextChunk: 11, chainDigestHex: DIGEST, minOffsetBytes: 0 }), { code: 'INVALID_ARGUMENT' });
  t.match(refused(state, { type: 'volume.receive-progress', name: 'copy', nextChunk: 5, chainDigestHex: 'xyz', minOffsetBytes: 0 }), { code: 'INVALID_ARGUMENT' });
  t.match(refused(state, { type: 'volume.receive-finish', name: 'copy' }), { code: 'RECEIVE_CONFLICT' }, 'not every chunk yet');
  state = ok(state, { type: 'volume.receive-progress', name: 'copy', nextChunk: 10, chainDigestHex: DIGEST, minOffsetBytes: 1024 ** 2 }).state;
  t.match(refused(state, { type: 'volume.receive-finish', name: 'copy' }), { code: 'SNAPSHOT_NOT_FOUND' }, 'the snapshot comes first');
  const done = findVolume(received(), 'copy');
  t.equal(done?.receive, undefined, 'visible');
  t.same(done?.receivedSnapshots, [{ name: 's1', sourceClusterId: 'cluster-a', sourceSnapshotId: 'src-s1' }]);
});

t.test('incremental: the base is found by its source id; unknown bases, attached volumes and name clashes are refused', async (t) => {
  const base = received();
  const volume = findVolume(base, 'copy');
  if (volume === undefined) return;
  t.equal(findReceivedSnapshot(volume, 'src-s1'), 's1');
  const incremental = ok(base, { type: 'volume.receive-start', name: 'copy', nodeId: 'n1', at: AT, source: source({ snapshotName: 's2', sourceSnapshotId: 'src-s2', baseSourceSnapshotId: 'src-s1' }) }).state;
  t.match(findVolume(incremental, 'copy')?.receive, { baseSnapshotName: 's1' });
  t.match(refused(incremental, { type: 'volume.receive-start', name: 'copy', nodeId: 'n1', at: AT, source: source({ snapshotName: 's3', sourceSnapshotId: 'src-s3', baseSourceSnapshotId: 'src-s1' }) }), { code: 'RECEIVE_CONFLICT' }, 'one receive at a time');
  t.match(refused(base, { type: 'volume.receive-start', name: 'copy', nodeId: 'n1', at: AT, source: source({ snapshotName: 's2', sourceSnapshotId: 'src-s2', baseSourceSnapshotId: 'other' }) }), { code: 'RECEIVE_CONFLICT' });
  t.match(refused(base, { type: 'volume.receive-start', name: 'copy', nodeId: 'n1', at: AT, source: source({ sourceSnapshotId: 'src-s1b', baseSourceSnapshotId: 'src-s1' }) }), { code: 'SNAPSHOT_EXISTS' }, 'the sent name is taken');
  const attached = ok(base, { type: 'volume.attach', name: 'copy', nodeId: 'n1' }).state;
  t.match(refused(attached, { type: 'volume.receive-start', name: 'copy', nodeId: 'n1', at: AT, source: source({ snapshotName: 's2', sourceSnapshotId: 'src-s2', baseSourceSnapshotId: 'src-s1' }) }), { code: 'VOLUME_ATTACHED' });
  const aborted = ok(incremental, { type: 'volume.receive-abort', name: 'copy' }).state;
  t.equal(findVolume(aborted, 'copy')?.receive, undefined);
  t.same(ok(aborted, { type: 'volume.receive-abort', name: 'copy' }).state, aborted, 'abort is idempotent');
  const gone = ok(base, { type: 'snapshot.delete', name: 'copy', snapshotName: 's1' }).state;
  const goneVolume = findVolume(gone, 'copy');
  t.equal(goneVolume === undefined ? 'missing' : findReceivedSnapshot(goneVolume, 'src-s1'), undefined, 'a deleted base is no base');
});
