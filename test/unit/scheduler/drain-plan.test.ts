import t from 'tap';
import { drainProgress, planDrain } from '../../../daemon/reconciler/drain-plan.js';
import { planLocality } from '../../../daemon/reconciler/locality-plan.js';
import type { ReplicaMove } from '../../../daemon/reconciler/replica-moves.js';
import { inSyncNodeIds, type ClusterState, type VolumeRecord } from '../../../daemon/state/cluster-state.js';
import type { Command } from '../../../daemon/state/commands.js';
import { apply, AT, cluster, GiB } from './plan-state-fixture.js';

function create(name: string, placement: string[], attachedTo?: string): Command[] {
  const commands: Command[] = [{ type: 'volume.create', id: `id-${name}`, name, sizeBytes: GiB, createdAt: AT, placement }];
  if (attachedTo !== undefined) commands.push({ type: 'volume.attach', name, nodeId: attachedTo });
  return commands;
}

function volume(state: ClusterState, name: string): VolumeRecord {
  const found = state.volumes[name];
  if (found === undefined) throw new Error(`no volume ${name}`);
  return found;
}

function toCommand(move: ReplicaMove): Command {
  return move.kind === 'add-replica'
    ? { type: 'replica.add', name: move.volume, nodeId: move.nodeId, at: AT }
    : { type: 'replica.remove', name: move.volume, nodeId: move.nodeId };
}

/** The owner's rebuild, as the state sees it: every rebuilding replica catches up. */
function rebuildAll(state: ClusterState): ClusterState {
  let next = state;
  for (const vol of Object.values(state.volumes)) {
    for (const replica of vol.replicas) {
      if (replica.state === 'rebuilding') next = apply(next, { type: 'replica.in-sync', name: vol.name, nodeId: replica.nodeId, generation: vol.generation, at: AT });
    }
  }
  return next;
}

t.test('drain: add on the best other node, wait for the rebuild, then remove', async (t) => {
  let state = apply(cluster({ n1: {}, n2: {}, n3: {}, n4: {} }), ...create('v', ['n1', 'n2', 'n3'], 'n1'));
  t.same(planDrain(state), { moves: [], blockers: [] }, 'nothing drains, nothing moves');
  state = apply(state, { type: 'node.drain', nodeId: 'n2', draining: true, at: AT });
  const first = planDrain(state);
  t.same(first.moves, [{ kind: 'add-replica', volume: 'v', nodeId: 'n4', reason: 'drain' }]);
  state = apply(state, ...first.moves.map(toCommand));
  t.same(planDrain(state).moves, [], 'while n4 rebuilds, nothing else happens');
  t.match(drainProgress(state, 'n2'), { replicasLeft: 1, attachedVolumes: [], blocking: [], done: false });
  state = rebuildAll(state);
  const second = planDrain(state);
  t.same(second.moves, [{ kind: 'remove-replica', volume: 'v', nodeId: 'n2', reason: 'drain' }]);
  state = apply(state, ...second.moves.map(toCommand));
  t.same(inSyncNodeIds(volume(state, 'v')).sort(), ['n1', 'n3', 'n4']);
  t.match(drainProgress(state, 'n2'), { replicasLeft: 0, done: true });
  t.equal(drainProgress(state, 'n1'), undefined, 'a node that is not draining has no progress');
});

t.test('drain: the in-sync count never drops below the replica count, across many volumes', async (t) => {
  let state = cluster({ a: { zone: 'z1' }, b: { zone: 'z1' }, c: { zone: 'z2' }, d: { zone: 'z2' }, e: { zone: 'z3' } });
  const placements = [['a', 'b', 'c'], ['b', 'c', 'd'], ['a', 'b'], ['b', 'e', 'd'], ['b']];
  placements.forEach((placement, index) => {
    state = apply(state, ...create(`v${index}`, placement, placement[0] === 'b' ? 'a' : placement[0]));
  });
  state = apply(state, { type: 'node.drain', nodeId: 'b', draining: true, at: AT });
  for (let pass = 0; pass < 20 && drainProgress(state, 'b')?.done !== true; pass += 1) {
    const plan = planDrain(state, { maxMovingVolumes: 2 });
    const adds = plan.moves.filter((move) => move.kind === 'add-replica').length;
    t.ok(adds <= 2, 'at most two volumes gain a replica at once');
    for (const move of plan.moves) {
      t.not(move.kind === 'add-replica' ? move.nodeId : '', 'b', 'nothing is added on the draining node');
      state = apply(state, toCommand(move));
      for (const vol of Object.values(state.volumes)) {
        t.ok(inSyncNodeIds(vol).length >= vol.replicaCount, `${vol.name} keeps ${vol.replicaCount} in sync after ${move.kind} ${move.nodeId}`);
      }
    }
    state = rebuildAll(state);
  }
  t.match(drainProgress(state, 'b'), { replicasLeft: 0, done: true }, 'b drained in a bounded number of passes');
  for (const vol of Object.values(state.volumes)) t.equal(vol.replicas.length, vol.replicaCount, `${vol.name} back to its count`);
  t.same(volume(state, 'v0').replicas.map((r) => r.nodeId).sort(), ['a', 'c', 'e'], 'zone spread picks z3 for v0');
});

t.test('drain blockers: no room elsewhere, detached volumes, attachments on the draining node', async (t) => {
  let state = apply(
    cluster({ n1: {}, n2: {}, n3: {} }),
    ...create('full', ['n1', 'n2', 'n3'], 'n1'),
    ...create('idle', ['n2', 'n3']),
    ...create('served', ['n1', 'n3'], 'n2'),
    { type: 'node.drain', nodeId: 'n2', draining: true, at: AT },
  );
  const plan = planDrain(state);
  t.same(plan.moves, [], 'nothing can move');
  const reasons = Object.fromEntries(plan.blockers.map((blocker) => [blocker.volume, blocker.reason]));
  t.match(reasons['full'], /no node can take/);
  t.match(reasons['idle'], /detached.*plinth volume attach idle --node OTHER/);
  t.match(reasons['served'], /attached on draining node n2.*--force/);
  const progress = drainProgress(state, 'n2');
  t.match(progress, { replicasLeft: 2, attachedVolumes: ['served'], done: false });
  t.equal(progress?.blocking.length, 3);
  state = apply(state, { type: 'volume.attach', name: 'idle', nodeId: 'n1' });
  t.same(planDrain(state).moves, [{ kind: 'add-replica', volume: 'idle', nodeId: 'n1', reason: 'drain' }], 'once attached it moves, to its owner first');
});

t.test('locality: a replica on the owner, then the farthest retires', async (t) => {
  let state = apply(cluster({ n1: { zone: 'z1' }, n2: { zone: 'z2' }, n3: { zone: 'z1' } }), ...create('v', ['n1', 'n2'], 'n3'));
  const first = planLocality(state);
  t.same(first, [{ kind: 'add-replica', volume: 'v', nodeId: 'n3', reason: 'locality' }]);
  state = apply(state, ...first.map(toCommand));
  t.same(planLocality(state), [], 'nothing retires before the local replica is in sync');
  state = rebuildAll(state);
  const second = planLocality(state);
  t.same(second, [{ kind: 'remove-replica', volume: 'v', nodeId: 'n2', reason: 'locality' }], 'n2 is in another zone: farthest');
  state = apply(state, ...second.map(toCommand));
  t.same(inSyncNodeIds(volume(state, 'v')).sort(), ['n1', 'n3']);
  t.same(planLocality(state), [], 'settled');
});

t.test('locality waits for health, room and a non-draining owner', async (t) => {
  const base = apply(cluster({ n1: {}, n2: {}, n3: { freeGiB: 0 }, n4: {} }), ...create('v', ['n1', 'n2'], 'n3'), ...create('w', ['n1', 'n2'], 'n4'));
  t.same(planLocality(base), [{ kind: 'add-replica', volume: 'w', nodeId: 'n4', reason: 'locality' }], 'n3 has no room for v');
  const degraded = apply(base, { type: 'replica.fault', name: 'w', nodeId: 'n2', generation: 1, at: AT });
  t.same(planLocality(degraded), [], 'a degraded volume is left to the rebuild');
  const draining = apply(base, { type: 'node.drain', nodeId: 'n4', draining: true, at: AT });
  t.same(planLocality(draining), [], 'a draining owner gets no replica');
  const holderDraining = apply(base, { type: 'node.drain', nodeId: 'n1', draining: true, at: AT });
  t.same(planLocality(holderDraining), [], 'a volume with a replica on a draining node is the drain plan\'s');
  const detached = apply(base, { type: 'volume.detach', name: 'w' });
  t.same(planLocality(detached), [], 'detached volumes stay put');
});
