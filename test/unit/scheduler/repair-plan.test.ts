import t from 'tap';
import { PlinthError } from '../../../common/plinth-error.js';
import { planRepair } from '../../../daemon/reconciler/repair-plan.js';
import { applyCommand } from '../../../daemon/state/apply-command.js';
import { emptyClusterState, type ClusterState } from '../../../daemon/state/cluster-state.js';
import type { Command } from '../../../daemon/state/commands.js';

const ADDRESSES = { api: '127.0.0.1:9700', peer: '127.0.0.1:9701', nbd: '127.0.0.1:10809', iscsi: '127.0.0.1:3260' };
const AT = '2026-02-01T00:00:00.000Z';
const GiB = 1024 ** 3;

function apply(state: ClusterState, ...commands: Command[]): ClusterState {
  return commands.reduce((current, command) => {
    const outcome = applyCommand(current, command);
    if (outcome instanceof PlinthError) throw outcome;
    return outcome.state;
  }, state);
}

function cluster(ids: string[]): ClusterState {
  return apply(
    emptyClusterState(),
    { type: 'cluster.init', clusterId: 'c1' },
    ...ids.map((nodeId): Command => ({ type: 'node.join', nodeId, addresses: ADDRESSES, joinedAt: AT })),
    ...ids.map((nodeId): Command => ({ type: 'node.capacity', nodeId, capacityBytes: 100 * GiB, freeBytes: 50 * GiB, diskCount: 1, at: AT })),
  );
}

t.test('a volume left short of replicas by node rm gets one more, once, on a node without one', async (t) => {
  let state = apply(
    cluster(['n1', 'n2', 'n3', 'n4']),
    { type: 'volume.create', id: 'id-db', name: 'db', sizeBytes: GiB, createdAt: AT, placement: ['n1', 'n2', 'n3'] },
    { type: 'volume.attach', name: 'db', nodeId: 'n1' },
    { type: 'volume.create', id: 'id-cold', name: 'cold', sizeBytes: GiB, createdAt: AT, placement: ['n1', 'n2', 'n3'] },
  );
  t.same(planRepair(state), [], 'nothing to repair while every volume holds its count');
  state = apply(state, { type: 'node.remove', nodeId: 'n3' });
  const moves = planRepair(state);
  t.same(moves, [{ kind: 'add-replica', volume: 'db', nodeId: 'n4', reason: 'repair' }], 'the attached volume gets a replica on n4; the detached one waits for an owner');
  state = apply(state, { type: 'replica.add', name: 'db', nodeId: 'n4', at: AT });
  t.same(planRepair(state), [], 'no second replica while one is being built');
});
