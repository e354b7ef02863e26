import t from 'tap';
import { isPlinthError } from '../../../common/plinth-error.js';
import { retireCandidate } from '../../../daemon/scheduler/retire-candidate.js';
import type { SchedulerNode } from '../../../daemon/scheduler/placement-types.js';

function node(id: string, zone?: string, rack?: string, freeBytes = 100, up = true): SchedulerNode {
  const labels = { ...(zone === undefined ? {} : { zone }), ...(rack === undefined ? {} : { rack }) };
  return { id, labels, freeBytes, capacityBytes: 1000, up };
}

const nodes = [
  node('owner', 'z1', 'r1'),
  node('same-rack', 'z1', 'r1'),
  node('same-zone', 'z1', 'r2'),
  node('far', 'z2', 'r1'),
  node('far-full', 'z2', 'r2', 10),
  node('down', 'z1', 'r1', 100, false),
];

const table: { name: string; replicas: string[]; want: string }[] = [
  { name: 'another zone retires before the same zone', replicas: ['owner', 'same-zone', 'far'], want: 'far' },
  { name: 'the same zone before the same rack', replicas: ['owner', 'same-rack', 'same-zone'], want: 'same-zone' },
  { name: 'a down node retires first', replicas: ['owner', 'far', 'down'], want: 'down' },
  { name: 'among equals, the fuller node', replicas: ['owner', 'far', 'far-full'], want: 'far-full' },
  { name: 'a node the cluster forgot retires first', replicas: ['owner', 'far', 'ghost'], want: 'ghost' },
];

for (const row of table) {
  t.test(row.name, async (t) => {
    t.equal(retireCandidate({ nodes, replicaNodeIds: row.replicas, ownerNodeId: 'owner' }), row.want);
  });
}

t.test('nothing to retire is an error', async (t) => {
  t.ok(isPlinthError(retireCandidate({ nodes, replicaNodeIds: ['owner'], ownerNodeId: 'owner' }), 'INVALID_ARGUMENT'));
  t.ok(isPlinthError(retireCandidate({ nodes, replicaNodeIds: ['owner', 'owner'], ownerNodeId: 'owner' }), 'INVALID_ARGUMENT'));
});
