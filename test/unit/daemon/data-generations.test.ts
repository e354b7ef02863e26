/**
 * Data generations in the cluster state machine (issue 7,
 * daemon/state/data-generations.ts): stamped at attach, frozen by a fault,
 * current again only after replica.in-sync; an attach where no replica at
 * the latest data generation can serve is refused with NO_CURRENT_REPLICA —
 * DRBD's quorate-data-divergence case, with votes to spare.
 */
import t from 'tap';
import { PlinthError } from '../../../common/plinth-error.js';
import { applyCommand } from '../../../daemon/state/apply-command.js';
import { emptyClusterState, findVolume, type ClusterState, type ReplicaRecord, type VolumeRecord } from '../../../daemon/state/cluster-state.js';
import type { Command } from '../../../daemon/state/commands.js';
import {
  currentDataNodeIds,
  dataGenerationOf,
  latestDataGeneration,
  noCurrentReplicaError,
  stampCurrentReplicas,
} from '../../../daemon/state/data-generations.js';

const ADDRESSES = { api: '127.0.0.1:9700', peer: '127.0.0.1:9701', nbd: '127.0.0.1:10809', iscsi: '127.0.0.1:3260' };
const AT = '2026-01-01T00:00:00.000Z';

function apply(state: ClusterState, ...commands: Command[]): ClusterState {
  let next = state;
  for (const command of commands) {
    const outcome = applyCommand(next, command);
    if (outcome instanceof PlinthError) throw outcome;
    next = outcome.state;
  }
  return next;
}

function refused(state: ClusterState, command: Command): PlinthError {
  const outcome = applyCommand(state, command);
  if (!(outcome instanceof PlinthError)) throw new Error(`expected ${command.type} to be refused`);
  return outcome;
}

function volume(state: ClusterState): VolumeRecord {
  const found = findVolume(state, 'v');
  if (found === undefined) throw new Error('no volume v');
  return found;
}

function generations(state: ClusterState): Record<string, [string, number]> {
  return Object.fromEntries(volume(state).replicas.map((replica) => [replica.nodeId, [replica.state, dataGenerationOf(replica)]]));
}

/** Five members (a Raft majority survives two losses), volume v on n1..n3 attached to n1 at generation 1. */
function attachedOnN1(): ClusterState {
  let state = apply(emptyClusterState(), { type: 'cluster.init', clusterId: 'c' });
  for (const nodeId of ['n1', 'n2', 'n3', 'n4', 'n5']) state = apply(state, { type: 'node.join', nodeId, addresses: ADDRESSES, joinedAt: AT });
  return apply(
    state,
    { type: 'volume.create', id: 'i', name: 'v', sizeBytes: 1 << 20, createdAt: AT, placement: ['n1', 'n2', 'n3'] },
    { type: 'volume.attach', name: 'v', nodeId: 'n1' },
  );
}

const fault = (nodeId: string, generation: number): Command => ({ type: 'replica.fault', name: 'v', nodeId, generation, at: AT });
const down = (nodeId: string): Command => ({ type: 'node.down', nodeId, at: AT });
const up = (nodeId: string): Command => ({ type: 'node.up', nodeId, at: AT });

t.test('missing data generations read as 0; current means in-sync at the latest', async (t) => {
  const replicas: ReplicaRecord[] = [
    { nodeId: 'a', state: 'in-sync', since: AT, dataGeneration: 4 },
    { nodeId: 'b', state: 'in-sync', since: AT },
    { nodeId: 'c', state: 'faulted', since: AT, dataGeneration: 4 },
    { nodeId: 'd', state: 'rebuilding', since: AT, dataGeneration: 3 },
  ];
  t.equal(dataGenerationOf({ nodeId: 'b', state: 'in-sync' }), 0);
  t.equal(latestDataGeneration(replicas), 4);
  t.same(currentDataNodeIds(replicas), ['a'], 'b is in-sync but unknown (older); c holds generation 4 but missed writes after its fault');
  t.same(currentDataNodeIds([{ nodeId: 'x', state: 'in-sync' }, { nodeId: 'y', state: 'faulted' }]), ['x'], 'state from before issue 7: every in-sync replica is current');
  const stamped = stampCurrentReplicas(replicas, 5);
  t.same(stamped.map(dataGenerationOf), [5, 0, 4, 3], 'only the current replica is stamped: stamping b would promote stale data');
});

t.test('attach stamps, fault freezes, in-sync after a rebuild stamps the current generation', async (t) => {
  let state = attachedOnN1();
  t.same(generations(state), { n1: ['in-sync', 1], n2: ['in-sync', 1], n3: ['in-sync', 1] });
  state = apply(state, fault('n3', 1), down('n1'), { type: 'volume.attach', name: 'v', nodeId: 'n2' });
  t.equal(volume(state).generation, 2, 'failover to n2');
  t.same(generations(state), { n1: ['in-sync', 2], n2: ['in-sync', 2], n3: ['faulted', 1] }, 'the faulted replica keeps its generation');
  state = apply(state, { type: 'replica.rebuilding', name: 'v', nodeId: 'n3', generation: 2, at: AT });
  t.same(generations(state)['n3'], ['rebuilding', 1], 'rebuilding is not current yet');
  state = apply(state, { type: 'replica.in-sync', name: 'v', nodeId: 'n3', generation: 2, at: AT });
  t.same(generations(state)['n3'], ['in-sync', 2], 'caught up completely: current again');
  t.same(JSON.parse(JSON.stringify(state)), state, 'still plain JSON');
});

t.test('the quorate-data-divergence case: the current holders gone, a stale replica back, votes to spare', async (t) => {
  // n3 is lost and faulted at generation 1; n1 writes on (acknowledged by n1 and n2 only).
  let state = apply(attachedOnN1(), fault('n3', 1));
  // n1 and n2, the only holders of those writes, die; n3, n4, n5 form a Raft majority.
  state = apply(state, down('n1'), down('n2'));
  const before = volume(state);
  for (const attach of [
    { type: 'volume.attach', name: 'v', nodeId: 'n4' },
    { type: 'volume.attach', name: 'v', nodeId: 'n3', force: true },
    { type: 'volume.attach', name: 'v', nodeId: 'n5', expectedGeneration: 1 },
  ] as const) {
    const error = refused(state, attach);
    t.equal(error.code, 'NO_CURRENT_REPLICA', `${attach.nodeId} refused`);
    t.equal(
      error.message,
      'volume v: its current data is on n1, n2 (data generation 1), none of those nodes is up; the replica on n3 (faulted at data generation 1) is stale and never served; it stays unavailable until a current replica returns',
    );
    t.same(error.details, { name: 'v', dataGeneration: 1, current: ['n1', 'n2'], stale: [{ nodeId: 'n3', state: 'faulted', dataGeneration: 1 }] });
  }
  t.equal(volume(state), before, 'nothing changed: no generation was spent, n3 stays faulted');
  t.equal(refused(state, { type: 'replica.in-sync', name: 'v', nodeId: 'n3', generation: 1, at: AT }).code, 'INVALID_ARGUMENT', 'a stale replica is never marked in-sync');

  // n2 returns: the attach goes through and the current replicas are stamped; n3 stays behind until rebuilt.
  state = apply(state, up('n2'), { type: 'volume.attach', name: 'v', nodeId: 'n4' });
  t.match(volume(state), { attachedTo: 'n4', generation: 2 });
  t.same(generations(state), { n1: ['in-sync', 2], n2: ['in-sync', 2], n3: ['faulted', 1] });
  t.same(currentDataNodeIds(volume(state).replicas), ['n1', 'n2'], 'n1 is still current in the state: the new owner faults it if it does not answer');
});

t.test('a restarting holder may attach to itself before node.up commits', async (t) => {
  const solo = apply(attachedOnN1(), fault('n2', 1), fault('n3', 1), down('n1'));
  t.equal(refused(solo, { type: 'volume.attach', name: 'v', nodeId: 'n2', force: true }).code, 'NO_CURRENT_REPLICA');
  const self = apply(solo, { type: 'volume.attach', name: 'v', nodeId: 'n1', force: true });
  t.match(volume(self), { attachedTo: 'n1', generation: 2 });
  t.same(generations(self)['n1'], ['in-sync', 2]);
});

t.test('a stale in-sync replica (state from a bug or by hand) is neither current nor stamped', async (t) => {
  const state = attachedOnN1();
  const v = volume(state);
  const tampered: ClusterState = {
    ...state,
    volumes: { v: { ...v, replicas: v.replicas.map((replica) => (replica.nodeId === 'n2' ? { ...replica, dataGeneration: 0 } : replica)) } },
  };
  const next = apply(tampered, { type: 'volume.attach', name: 'v', nodeId: 'n1', force: true });
  t.same(generations(next), { n1: ['in-sync', 2], n2: ['in-sync', 0], n3: ['in-sync', 2] });
  t.same(currentDataNodeIds(volume(next).replicas), ['n1', 'n3']);
  const again = apply(next, { type: 'replica.in-sync', name: 'v', nodeId: 'n2', generation: 2, at: AT });
  t.same(generations(again)['n2'], ['in-sync', 0], 'replica.in-sync on a replica already in the set changes nothing');
});

t.test('state from before issue 7 (no data generations) keeps working', async (t) => {
  const state = attachedOnN1();
  const v = volume(state);
  const legacy: ClusterState = {
    ...state,
    volumes: { v: { ...v, replicas: v.replicas.map(({ dataGeneration: _dropped, ...rest }) => rest) } },
  };
  t.same(currentDataNodeIds(volume(legacy).replicas), ['n1', 'n2', 'n3']);
  const next = apply(legacy, fault('n3', 1), { type: 'volume.attach', name: 'v', nodeId: 'n2', force: true });
  t.same(generations(next), { n1: ['in-sync', 2], n2: ['in-sync', 2], n3: ['faulted', 0] });
});

t.test('the error names where the data is, and says so when no in-sync replica holds it', async (t) => {
  const two = noCurrentReplicaError('db', [
    { nodeId: 'n1', state: 'in-sync', dataGeneration: 7 },
    { nodeId: 'n2', state: 'in-sync', dataGeneration: 7 },
    { nodeId: 'n3', state: 'faulted', dataGeneration: 5 },
    { nodeId: 'n4', state: 'rebuilding', dataGeneration: 6 },
  ], 'none reachable');
  t.match(two.message, /^volume db: its current data is on n1, n2 \(data generation 7\), none reachable; the replicas on n3 \(faulted at data generation 5\), n4 \(rebuilding at data generation 6\) are stale/);
  const none = noCurrentReplicaError('db', [{ nodeId: 'n1', state: 'faulted', dataGeneration: 3 }], 'none reachable');
  t.match(none.message, /no in-sync replica holds its latest data \(data generation 3\)/);
});
