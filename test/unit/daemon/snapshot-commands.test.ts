import t from 'tap';
import { findVolume, type ClusterState, type VolumeRecord } from '../../../daemon/state/cluster-state.js';
import { decodeCommand, type Command } from '../../../daemon/state/commands.js';
import { findSnapshot, isValidSnapshotName } from '../../../daemon/state/snapshot-commands.js';
import { ok, refused, withNodes } from './helpers/cluster-state-fixture.js';

const AT = '2026-01-01T00:00:00.000Z';
const MiB = 1024 * 1024;

function cluster(): ClusterState {
  const state = withNodes(['n1', 'n2', 'n3', 'n4'], AT);
  return ok(state, { type: 'volume.create', id: 'vol-1', name: 'db', sizeBytes: 64 * MiB, createdAt: AT, placement: ['n1', 'n2', 'n3'] }).state;
}

function volume(state: ClusterState, name = 'db'): VolumeRecord {
  const found = findVolume(state, name);
  if (found === undefined) throw new Error(`no volume ${name}`);
  return found;
}

function snap(name: string, extra: Partial<{ id: string; generation: number; holders: string[] }> = {}): Command {
  return {
    type: 'snapshot.create',
    name: 'db',
    snapshotId: extra.id ?? `id-${name}`,
    snapshotName: name,
    createdAt: AT,
    generation: extra.generation ?? 0,
    holders: extra.holders ?? ['n1', 'n2', 'n3'],
  };
}

t.test('snapshot.create records the snapshot with its holders; names are unique per volume', async (t) => {
  const state = ok(cluster(), snap('before-upgrade')).state;
  const snapshot = findSnapshot(volume(state), 'before-upgrade');
  t.same(snapshot, { id: 'id-before-upgrade', name: 'before-upgrade', createdAt: AT, sizeBytes: 64 * MiB, generation: 0, holders: ['n1', 'n2', 'n3'] });
  t.equal(refused(state, snap('before-upgrade', { id: 'other' })).code, 'SNAPSHOT_EXISTS');
  t.equal(refused(state, snap('second', { id: 'id-before-upgrade' })).code, 'INVALID_ARGUMENT', 'ids are unique');
  t.equal(refused(state, { ...snap('x'), name: 'nope' } as Command).code, 'VOLUME_NOT_FOUND');
});

t.test('snapshot.create refuses bad names, a stale generation and holders other than the in-sync set', async (t) => {
  const state = cluster();
  for (const bad of ['', '-x', 'a@b', 'a/b', 'x'.repeat(64)]) t.equal(refused(state, snap(bad)).code, 'INVALID_NAME', JSON.stringify(bad));
  t.ok(isValidSnapshotName('Nightly_2026.11-26'));
  t.equal(refused(state, snap('s', { generation: 1 })).code, 'FENCED');
  t.equal(refused(state, snap('s', { holders: ['n1', 'n2'] })).code, 'INVALID_ARGUMENT', 'fewer holders than in-sync replicas');
  t.equal(refused(state, snap('s', { holders: ['n1', 'n2', 'n3', 'n4'] })).code, 'INVALID_ARGUMENT', 'a node without a replica');
  const faulted = ok(ok(state, { type: 'volume.attach', name: 'db', nodeId: 'n1' }).state, { type: 'replica.fault', name: 'db', nodeId: 'n3', generation: 1, at: AT }).state;
  t.ok(ok(faulted, snap('s', { generation: 1, holders: ['n1', 'n2'] })), 'the in-sync set after a fault');
});

t.test('snapshot.delete removes it; unknown snapshots are SNAPSHOT_NOT_FOUND', async (t) => {
  const state = ok(ok(cluster(), snap('a')).state, snap('b')).state;
  const after = ok(state, { type: 'snapshot.delete', name: 'db', snapshotName: 'a' }).state;
  t.same(volume(after).snapshots?.map((s) => s.name), ['b']);
  t.equal(refused(after, { type: 'snapshot.delete', name: 'db', snapshotName: 'a' }).code, 'SNAPSHOT_NOT_FOUND');
});

t.test('volume.clone makes a detached volume on the holders, in sync, remembering its origin', async (t) => {
  const state = ok(cluster(), snap('a')).state;
  const clone = { type: 'volume.clone', name: 'db', snapshotName: 'a', cloneId: 'vol-2', cloneName: 'db-test', createdAt: AT, holders: ['n1', 'n2'] } as const;
  const applied = ok(state, clone).state;
  const made = volume(applied, 'db-test');
  t.equal(made.replicaCount, 2);
  t.same(made.replicas.map((r) => [r.nodeId, r.state]), [['n1', 'in-sync'], ['n2', 'in-sync']]);
  t.same(made.clonedFrom, { volumeId: 'vol-1', snapshotId: 'id-a' });
  t.equal(made.sizeBytes, 64 * MiB);
  t.equal(made.attachedTo, null);
  t.equal(refused(applied, { ...clone, cloneId: 'vol-3' }).code, 'VOLUME_EXISTS');
  t.equal(refused(state, { ...clone, holders: ['n4'] }).code, 'INVALID_ARGUMENT', 'n4 does not hold the snapshot');
  t.equal(refused(state, { ...clone, snapshotName: 'zz' }).code, 'SNAPSHOT_NOT_FOUND');
  t.equal(refused(state, { ...clone, cloneName: 'Bad_Name' }).code, 'INVALID_NAME');
  // The clone outlives its source: deleting the source leaves it as it is.
  const sourceGone = ok(applied, { type: 'volume.delete', name: 'db' }).state;
  t.same(volume(sourceGone, 'db-test'), made);
});

t.test('volume.revert: detached only, bumps the generation, refused when an in-sync replica lacks the snapshot', async (t) => {
  const state = ok(cluster(), snap('a')).state;
  const revert = { type: 'volume.revert', name: 'db', snapshotName: 'a', generation: 0, at: AT } as const;
  const reverted = volume(ok(state, revert).state);
  t.equal(reverted.generation, 1);
  t.ok(reverted.replicas.every((r) => r.dataGeneration === 1), 'the reverted replicas are current at the new generation');
  const attached = ok(state, { type: 'volume.attach', name: 'db', nodeId: 'n2' }).state;
  const refusal = refused(attached, { ...revert, generation: 1 });
  t.equal(refusal.code, 'VOLUME_ATTACHED');
  t.match(refusal.message, /attached to node n2/);
  const detached = ok(attached, { type: 'volume.detach', name: 'db' }).state;
  t.equal(refused(detached, revert).code, 'FENCED', 'an attach since the REVERTs were sent');
  // A replica added later (a replacement) is rebuilt without the snapshot: it is not a holder.
  const moved = ok(ok(state, { type: 'replica.add', name: 'db', nodeId: 'n4', at: AT }).state, { type: 'replica.remove', name: 'db', nodeId: 'n3' }).state;
  t.same(findSnapshot(volume(moved), 'a')?.holders, ['n1', 'n2'], 'a removed replica is no holder any more');
  const inSyncN4 = ok(ok(ok(moved, { type: 'volume.attach', name: 'db', nodeId: 'n1' }).state, { type: 'replica.in-sync', name: 'db', nodeId: 'n4', generation: 1, at: AT }).state, { type: 'volume.detach', name: 'db' }).state;
  t.equal(refused(inSyncN4, { ...revert, generation: 1 }).code, 'SNAPSHOT_NOT_FOUND');
});

t.test('a snapshot without holders is gone; node.remove drops its holdings', async (t) => {
  let state = ok(cluster(), snap('a')).state;
  state = ok(state, { type: 'node.remove', nodeId: 'n3' }).state;
  t.same(findSnapshot(volume(state), 'a')?.holders, ['n1', 'n2']);
  state = ok(state, { type: 'replica.remove', name: 'db', nodeId: 'n2' }).state;
  state = ok(ok(state, { type: 'replica.add', name: 'db', nodeId: 'n4', at: AT }).state, { type: 'volume.attach', name: 'db', nodeId: 'n4' }).state;
  state = ok(state, { type: 'replica.in-sync', name: 'db', nodeId: 'n4', generation: 1, at: AT }).state;
  state = ok(state, { type: 'replica.remove', name: 'db', nodeId: 'n1' }).state;
  t.same(volume(state).snapshots, [], 'no holder left');
});

t.test('the new commands decode from the log and refuse malformed fields', async (t) => {
  const command = snap('a');
  t.same(decodeCommand(JSON.parse(JSON.stringify(command))), command);
  t.throws(() => decodeCommand({ ...command, holders: 'n1' }), { code: 'INVALID_ARGUMENT' });
  t.throws(() => decodeCommand({ type: 'volume.revert', name: 'db', snapshotName: 'a', at: AT }), { code: 'INVALID_ARGUMENT' });
  t.throws(() => decodeCommand({ type: 'snapshot.delete', name: 'db', snapshotName: 'a', extra: 1 }), { code: 'INVALID_ARGUMENT' });
});

t.test('snapshot.holder-add records a rebuilt replica as a holder; idempotent; only on a replica of the volume', async (t) => {
  let state = ok(cluster(), snap('a')).state;
  state = ok(ok(state, { type: 'replica.add', name: 'db', nodeId: 'n4', at: AT }).state, { type: 'replica.remove', name: 'db', nodeId: 'n3' }).state;
  t.same(findSnapshot(volume(state), 'a')?.holders, ['n1', 'n2']);
  const add = { type: 'snapshot.holder-add', name: 'db', snapshotName: 'a', nodeId: 'n4' } as const;
  const added = ok(state, add).state;
  t.same(findSnapshot(volume(added), 'a')?.holders, ['n1', 'n2', 'n4'], 'the replacement holds it (its replica is still rebuilding)');
  t.same(volume(ok(added, add).state), volume(added), 'a repeated commit changes nothing');
  t.equal(refused(state, { ...add, nodeId: 'n3' }).code, 'INVALID_ARGUMENT', 'n3 has no replica any more');
  t.equal(refused(state, { ...add, snapshotName: 'zz' }).code, 'SNAPSHOT_NOT_FOUND');
  t.equal(refused(state, { ...add, name: 'nope' }).code, 'VOLUME_NOT_FOUND');
  // Its pool copy goes with the replica, like any other holder's.
  const removed = ok(added, { type: 'replica.remove', name: 'db', nodeId: 'n4' }).state;
  t.same(findSnapshot(volume(removed), 'a')?.holders, ['n1', 'n2']);
  t.same(decodeCommand(JSON.parse(JSON.stringify(add))), add);
  t.throws(() => decodeCommand({ ...add, nodeId: 4 }), { code: 'INVALID_ARGUMENT' });
});
