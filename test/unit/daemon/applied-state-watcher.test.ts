import { pino } from 'pino';
import t from 'tap';
import { PlinthError } from '../../../common/plinth-error.js';
import { rebuildProgressByNode } from '../../../daemon/control/rebuild-progress.js';
import { replicaLine } from '../../../api/cli/commands/volume.js';
import { applyCommand } from '../../../daemon/state/apply-command.js';
import { emptyClusterState, type ClusterState } from '../../../daemon/state/cluster-state.js';
import type { Command } from '../../../daemon/state/commands.js';
import { AppliedStateWatcher, attachedHere, freeVolumeSpace, replicaGoneByEntry, replicasGoneFrom } from '../../../daemon/volume/applied-state-watcher.js';
import { ClusterStateMachine, encodeCommand } from '../../../daemon/cluster/cluster-state-machine.js';
import { MemoryPool } from '../../helpers/memory-pool.js';

const logger = pino({ level: 'silent' });
const ADDRESSES = { api: '127.0.0.1:9700', peer: '127.0.0.1:9701', nbd: '127.0.0.1:10809', iscsi: '127.0.0.1:3260' };
const MiB = 1024 ** 2;

function apply(state: ClusterState, command: Command): ClusterState {
  const applied = applyCommand(state, command);
  if (applied instanceof PlinthError) throw applied;
  return applied.state;
}

/** Three nodes; `a` on n1+n2, `b` on n2+n3, `a` attached to n1. */
function cluster(): ClusterState {
  let state = apply(emptyClusterState(), { type: 'cluster.init', clusterId: 'c1' });
  for (const nodeId of ['n1', 'n2', 'n3']) state = apply(state, { type: 'node.join', nodeId, addresses: ADDRESSES, joinedAt: '2026-01-01T00:00:00.000Z' });
  const createdAt = '2026-01-01T00:00:00.000Z';
  state = apply(state, { type: 'volume.create', id: 'id-a', name: 'a', sizeBytes: 4 * MiB, replicaCount: 2, createdAt, placement: ['n1', 'n2'] });
  state = apply(state, { type: 'volume.create', id: 'id-b', name: 'b', sizeBytes: 4 * MiB, replicaCount: 2, createdAt, placement: ['n2', 'n3'] });
  return apply(state, { type: 'volume.attach', name: 'a', nodeId: 'n1' });
}

t.test('replicasGoneFrom names only replicas held here that the new state no longer places here', async (t) => {
  const before = cluster();
  const detached = apply(before, { type: 'volume.detach', name: 'a' });
  t.same(replicasGoneFrom(before, detached, 'n1'), [], 'a detach deletes nothing');
  const after = apply(detached, { type: 'volume.delete', name: 'a' });
  t.same(replicasGoneFrom(detached, after, 'n1'), [{ volumeId: 'id-a', name: 'a', sizeBytes: 4 * MiB }]);
  t.same(replicasGoneFrom(detached, after, 'n2'), [{ volumeId: 'id-a', name: 'a', sizeBytes: 4 * MiB }]);
  t.same(replicasGoneFrom(detached, after, 'n3'), [], 'n3 held no replica of a');

  const moved = apply(apply(before, { type: 'replica.add', name: 'b', nodeId: 'n1', at: '2026-01-01T00:00:01.000Z' }), { type: 'replica.remove', name: 'b', nodeId: 'n3' });
  t.same(replicasGoneFrom(before, moved, 'n3'), [{ volumeId: 'id-b', name: 'b', sizeBytes: 4 * MiB }], 'a replica moved off n3 is gone from n3');
  t.same(replicasGoneFrom(before, moved, 'n2'), [], 'n2 still holds b');
});

t.test('attachedHere follows the committed owner', async (t) => {
  const state = cluster();
  t.ok(attachedHere(state, 'id-a', 'n1'));
  t.notOk(attachedHere(state, 'id-a', 'n2'));
  t.notOk(attachedHere(state, 'id-b', 'n2'), 'b is detached');
  t.notOk(attachedHere(apply(state, { type: 'volume.detach', name: 'a' }), 'id-a', 'n1'));
  t.notOk(attachedHere(state, 'id-missing', 'n1'));
});

t.test('freeVolumeSpace frees an open volume (closing the store) and a closed one', async (t) => {
  const pool = new MemoryPool({ capacityBytes: 64 * MiB });
  const open = await pool.openVolume('open', 4 * MiB);
  await open.write(0, Buffer.alloc(4096, 1));
  const closed = await pool.openVolume('closed', 4 * MiB);
  await closed.write(0, Buffer.alloc(4096, 2));
  await closed.close();
  t.ok(pool.stats().usedBytes > 0);
  await freeVolumeSpace(pool, { volumeId: 'open', name: 'open', sizeBytes: 4 * MiB });
  await freeVolumeSpace(pool, { volumeId: 'closed', name: 'closed', sizeBytes: 4 * MiB });
  await freeVolumeSpace(pool, { volumeId: 'never', name: 'never', sizeBytes: 4 * MiB });
  t.notOk(pool.openStores.has('open'), 'the open store was closed first');
  t.equal(pool.stats().usedBytes, 0, 'every extent is free');
  t.equal(pool.volumes.size, 0, 'no volume is left behind');
});

t.test('the watcher releases and frees on an applied change, and retries after a failure', async (t) => {
  const pool = new MemoryPool({ capacityBytes: 64 * MiB });
  const store = await pool.openVolume('id-a', 4 * MiB);
  await store.write(0, Buffer.alloc(4096, 3));
  await store.close();
  let state = cluster();
  let releases = 0;
  let failRelease = false;
  const watcher = new AppliedStateWatcher(
    { nodeId: 'n2', intervalMs: 60_000 },
    {
      state: () => state,
      pool,
      logger,
      releaseUnowned: async () => {
        releases += 1;
        if (failRelease) throw new PlinthError('IO_ERROR', 'disconnect failed');
      },
    },
  );
  t.teardown(() => watcher.close());
  await watcher.check();
  t.equal(releases, 0, 'nothing changed: nothing to do');

  state = apply(apply(state, { type: 'volume.detach', name: 'a' }), { type: 'volume.delete', name: 'a' });
  failRelease = true;
  await watcher.check();
  t.equal(releases, 1);
  t.ok(pool.volumes.has('id-a'), 'a failed pass frees nothing yet');
  failRelease = false;
  await watcher.check();
  t.equal(releases, 2, 'the same change is retried');
  t.notOk(pool.volumes.has('id-a'), 'the deleted replica is freed');
  await watcher.check();
  t.equal(releases, 2, 'a handled change is not handled twice');
});

t.test('a volume created and deleted between two passes is still freed (seen entry by entry)', async (t) => {
  const pool = new MemoryPool({ capacityBytes: 64 * MiB });
  const machine = new ClusterStateMachine({ logger });
  let index = 0;
  const commit = (command: Command): void => {
    index += 1;
    machine.apply({ index, term: 1, command: encodeCommand(command) });
  };
  commit({ type: 'cluster.init', clusterId: 'c1' });
  for (const nodeId of ['n1', 'n2']) commit({ type: 'node.join', nodeId, addresses: ADDRESSES, joinedAt: '2026-01-01T00:00:00.000Z' });
  const watcher = new AppliedStateWatcher(
    { nodeId: 'n2', intervalMs: 60_000 },
    { state: () => machine.state, subscribe: (listener) => machine.onApplied(listener), pool, logger, releaseUnowned: async () => undefined },
  );
  t.teardown(() => watcher.close());
  await watcher.check();

  commit({ type: 'volume.create', id: 'id-q', name: 'q', sizeBytes: 4 * MiB, replicaCount: 2, createdAt: '2026-01-01T00:00:00.000Z', placement: ['n1', 'n2'] });
  // The owner's replica link writes here before this node's watcher ever sees the volume.
  const store = await pool.openVolume('id-q', 4 * MiB);
  await store.write(0, Buffer.alloc(4096, 7));
  commit({ type: 'volume.delete', name: 'q' });
  t.same(Object.keys(machine.state.volumes), [], 'q came and went between two passes');
  await watcher.check();
  t.notOk(pool.volumes.has('id-q'), 'its replica here is freed all the same');
  t.equal(pool.stats().usedBytes, 0);
});

t.test('replicaGoneByEntry: an accepted volume.delete of a replica held here, or a replica.remove of this node', async (t) => {
  const state = cluster();
  const volume = state.volumes['a'];
  if (volume === undefined) throw new Error('fixture lost volume a');
  const outcome = { type: 'volume' as const, volume };
  t.same(replicaGoneByEntry({ type: 'volume.delete', name: 'a' }, outcome, 'n1'), { volumeId: 'id-a', name: 'a', sizeBytes: 4 * MiB });
  t.equal(replicaGoneByEntry({ type: 'volume.delete', name: 'a' }, outcome, 'n3'), undefined, 'n3 held no replica');
  t.equal(replicaGoneByEntry({ type: 'volume.delete', name: 'a' }, new PlinthError('VOLUME_ATTACHED', 'attached'), 'n1'), undefined, 'a refused delete frees nothing');
  t.equal(replicaGoneByEntry({ type: 'volume.detach', name: 'a' }, outcome, 'n1'), undefined, 'a detach frees nothing');
  t.same(replicaGoneByEntry({ type: 'replica.remove', name: 'a', nodeId: 'n2' }, outcome, 'n2'), { volumeId: 'id-a', name: 'a', sizeBytes: 4 * MiB }, 'a replica removed from n2');
  t.equal(replicaGoneByEntry({ type: 'replica.remove', name: 'a', nodeId: 'n2' }, outcome, 'n1'), undefined, 'another node\'s removal');
  t.equal(replicaGoneByEntry({ type: 'replica.remove', name: 'a', nodeId: 'n1' }, outcome, 'n1'), undefined, 'never the owner\'s own replica (a is attached to n1)');
});

t.test('a replica moved off this node is freed, after the replica server forgot it', async (t) => {
  const pool = new MemoryPool({ capacityBytes: 64 * MiB });
  const store = await pool.openVolume('id-b', 4 * MiB);
  await store.write(0, Buffer.alloc(4096, 9));
  let state = cluster();
  const forgotten: string[] = [];
  const watcher = new AppliedStateWatcher(
    { nodeId: 'n3', intervalMs: 60_000 },
    { state: () => state, pool, logger, releaseUnowned: async () => undefined, forgetReplica: async (volumeId) => void forgotten.push(volumeId) },
  );
  t.teardown(() => watcher.close());
  state = apply(apply(state, { type: 'replica.add', name: 'b', nodeId: 'n1', at: '2026-01-01T00:00:01.000Z' }), { type: 'replica.remove', name: 'b', nodeId: 'n3' });
  await watcher.check();
  t.same(forgotten, ['id-b'], 'the replica server let go first');
  t.notOk(pool.volumes.has('id-b'), 'the moved replica\'s space is free');
  t.equal(pool.stats().usedBytes, 0);
});

t.test('rebuild progress per replica node, and the CLI line', async (t) => {
  const progress = rebuildProgressByNode([
    { volume: 'a', nodeId: 'n2', faultedSinceMs: 1, rebuilding: true, progress: { copiedBytes: 1, zeroedBytes: 0, doneBytes: 1536 * MiB, totalBytes: 4096 * MiB }, graceExpired: false, lastError: null },
    { volume: 'a', nodeId: 'n3', faultedSinceMs: 1, rebuilding: false, progress: null, graceExpired: false, lastError: 'down' },
  ]);
  t.same([...progress.entries()], [['n2', { copiedBytes: 1536 * MiB, totalBytes: 4096 * MiB, done: false }]]);
  const rebuild = progress.get('n2');
  t.equal(replicaLine(rebuild === undefined ? { nodeId: 'n2', state: 'rebuilding' } : { nodeId: 'n2', state: 'rebuilding', rebuild }), 'rebuilding 37% (1.5GiB of 4GiB)');
  t.equal(replicaLine({ nodeId: 'n2', state: 'in-sync', rebuild: { copiedBytes: 10, totalBytes: 10, done: true } }), 'in-sync');
  t.equal(replicaLine({ nodeId: 'n3', state: 'faulted' }), 'faulted');
});
