import t from 'tap';
import { planRepair } from '../../../daemon/reconciler/repair-plan.js';
import { apply, AT, cluster, GiB } from './plan-state-fixture.js';

t.test('a volume left short of replicas by node rm gets one more, once, on a node without one', async (t) => {
  let state = apply(
    cluster({ n1: {}, n2: {}, n3: {}, n4: {} }),
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
