import t from 'tap';
import type { SnapshotInfo } from '../../../blockdev/pool/pool-types.js';
import { snapshotsGoneFrom, straySnapshots } from '../../../daemon/volume/applied-state-watcher.js';
import type { ClusterState } from '../../../daemon/state/cluster-state.js';
import { ok, withNodes } from './helpers/cluster-state-fixture.js';

/** Issue 8: which snapshot copies a node frees (applied-state-watcher.ts), as pure functions of the state. */

const AT = '2026-01-01T00:00:00.000Z';

function withSnapshots(): ClusterState {
  let state = withNodes(['n1', 'n2', 'n3'], AT);
  state = ok(state, { type: 'volume.create', id: 'vol-1', name: 'db', sizeBytes: 1 << 20, createdAt: AT, placement: ['n1', 'n2'] }).state;
  for (const name of ['a', 'b']) {
    state = ok(state, { type: 'snapshot.create', name: 'db', snapshotId: `id-${name}`, snapshotName: name, createdAt: AT, generation: 0, holders: ['n1', 'n2'] }).state;
  }
  return state;
}

function poolWith(infos: Record<string, readonly Partial<SnapshotInfo>[]>): { listSnapshots(volumeId: string): SnapshotInfo[] } {
  return {
    listSnapshots: (volumeId) =>
      (infos[volumeId] ?? []).map((info) => ({ snapshotId: 'x', sizeBytes: 0, createdAtMs: 0, exclusiveBytes: 0, sharedBytes: 0, ...info })),
  };
}

t.test('a deleted snapshot is gone from every holder, and only from holders', async (t) => {
  const before = withSnapshots();
  const after = ok(before, { type: 'snapshot.delete', name: 'db', snapshotName: 'a' }).state;
  t.same(snapshotsGoneFrom(before, after, 'n1'), [{ volumeId: 'vol-1', snapshotId: 'id-a' }]);
  t.same(snapshotsGoneFrom(before, after, 'n3'), [], 'n3 never held it');
  t.same(snapshotsGoneFrom(after, after, 'n1'), []);
  const volumeGone = ok(before, { type: 'volume.delete', name: 'db' }).state;
  t.same(snapshotsGoneFrom(before, volumeGone, 'n2').map((gone) => gone.snapshotId), ['id-a', 'id-b'], 'with its volume');
});

t.test('strays: unrecorded copies of volumes held here, past the grace only', async (t) => {
  const state = withSnapshots();
  const pool = poolWith({
    'vol-1': [
      { snapshotId: 'id-a', createdAtMs: 0 },
      { snapshotId: 'failed-create', createdAtMs: 1_000 },
      { snapshotId: 'being-taken', createdAtMs: 95_000 },
    ],
  });
  t.same(straySnapshots(state, pool, 'n1', 100_000, 60_000), [{ volumeId: 'vol-1', snapshotId: 'failed-create' }]);
  t.same(straySnapshots(state, pool, 'n3', 100_000, 60_000), [], 'a node without the volume\'s replica sweeps nothing of it');
});
