import t from 'tap';
import { isPlinthError } from '../../../common/plinth-error.js';
import { placeReplicas } from '../../../daemon/scheduler/place-replicas.js';
import type { SchedulerNode } from '../../../daemon/scheduler/placement-types.js';

const GiB = 1024 ** 3;

function node(id: string, zone?: string, rack?: string, freeGiB = 100, up = true): SchedulerNode {
  const labels = { ...(zone === undefined ? {} : { zone }), ...(rack === undefined ? {} : { rack }) };
  return { id, labels, freeBytes: freeGiB * GiB, capacityBytes: 200 * GiB, up };
}

const table: { name: string; nodes: SchedulerNode[]; count: number; prefer?: string; exclude?: string[]; want: string[] }[] = [
  {
    name: 'unlabelled: most free space first, ties by id',
    nodes: [node('c', undefined, undefined, 50), node('a'), node('b'), node('d', undefined, undefined, 150)],
    count: 3,
    want: ['d', 'a', 'b'],
  },
  {
    name: 'zones before free space',
    nodes: [node('a1', 'z1', 'r1', 190), node('a2', 'z1', 'r2', 180), node('b1', 'z2', 'r1', 20), node('c1', 'z3', 'r1', 15)],
    count: 3,
    want: ['a1', 'b1', 'c1'],
  },
  {
    name: 'racks inside a zone when zones run out',
    nodes: [node('a1', 'z1', 'r1', 190), node('a2', 'z1', 'r1', 180), node('a3', 'z1', 'r2', 10), node('b1', 'z2', 'r1', 50)],
    count: 3,
    want: ['a1', 'b1', 'a3'],
  },
  {
    name: 'locality: the preferred node first',
    nodes: [node('a', 'z1'), node('b', 'z2'), node('c', 'z3', undefined, 11)],
    count: 2,
    prefer: 'c',
    want: ['c', 'a'],
  },
  {
    name: 'a preferred node without room is skipped',
    nodes: [node('a', 'z1'), node('b', 'z2'), node('c', 'z3', undefined, 0)],
    count: 2,
    prefer: 'c',
    want: ['a', 'b'],
  },
  {
    name: 'down and excluded nodes are never chosen',
    nodes: [node('a', 'z1', undefined, 100, false), node('b', 'z2'), node('c', 'z3'), node('d', 'z4')],
    count: 2,
    exclude: ['b'],
    want: ['c', 'd'],
  },
];

for (const row of table) {
  t.test(row.name, async (t) => {
    const result = placeReplicas({
      nodes: row.nodes,
      replicaCount: row.count,
      sizeBytes: 10 * GiB,
      ...(row.prefer === undefined ? {} : { preferNodeId: row.prefer }),
      ...(row.exclude === undefined ? {} : { exclude: row.exclude }),
    });
    t.same(result, row.want);
  });
}

t.test('refusals say how many nodes qualified', async (t) => {
  const nodes = [node('a'), node('b', undefined, undefined, 1), node('c', undefined, undefined, 100, false)];
  const tooFewUp = placeReplicas({ nodes, replicaCount: 3, sizeBytes: GiB });
  t.ok(isPlinthError(tooFewUp, 'INVALID_ARGUMENT'));
  t.match(isPlinthError(tooFewUp) ? tooFewUp.message : '', /only 2 of 3 qualify/);
  const tooFull = placeReplicas({ nodes, replicaCount: 2, sizeBytes: 50 * GiB });
  t.ok(isPlinthError(tooFull, 'NO_SPACE'));
  t.match(isPlinthError(tooFull) ? tooFull.details : {}, { fittingNodes: 1, upNodes: 2 });
  t.ok(isPlinthError(placeReplicas({ nodes, replicaCount: 0, sizeBytes: GiB }), 'INVALID_ARGUMENT'));
  t.ok(isPlinthError(placeReplicas({ nodes, replicaCount: 1, sizeBytes: -1 }), 'INVALID_ARGUMENT'));
  t.ok(isPlinthError(placeReplicas({ nodes: [node('a'), node('a')], replicaCount: 1, sizeBytes: 1 }), 'INVALID_ARGUMENT'));
});

t.test('seeded placement is deterministic, distinct, spread, and weighted by free space', async (t) => {
  const nodes = [
    node('a1', 'z1', 'r1', 10),
    node('a2', 'z1', 'r2', 190),
    node('b1', 'z2', 'r1', 10),
    node('b2', 'z2', 'r2', 190),
    node('c1', 'z3', 'r1', 100),
  ];
  const counts = new Map<string, number>();
  for (let seed = 0; seed < 400; seed += 1) {
    const first = placeReplicas({ nodes, replicaCount: 3, sizeBytes: GiB, seed });
    const again = placeReplicas({ nodes, replicaCount: 3, sizeBytes: GiB, seed });
    if (!Array.isArray(first)) throw first;
    t.same(again, first);
    if (new Set(first).size !== 3) t.fail(`seed ${seed}: duplicate node`);
    const zones = new Set(first.map((id) => id[0]));
    if (zones.size !== 3) t.fail(`seed ${seed}: not spread over three zones: ${first.join(',')}`);
    for (const id of first) counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  t.ok((counts.get('a2') ?? 0) > 4 * (counts.get('a1') ?? 0), `fuller a1 is chosen less often: ${[...counts].join(' ')}`);
  t.equal(counts.get('c1'), 400, 'the only node of zone 3 is always chosen');
});

t.test('existing replicas count toward spread when adding one', async (t) => {
  const nodes = [node('a1', 'z1', undefined, 190), node('b1', 'z2', undefined, 10), node('a2', 'z1', undefined, 150)];
  t.same(placeReplicas({ nodes, replicaCount: 1, sizeBytes: GiB, existingNodeIds: ['a2'], exclude: ['a2'] }), ['b1']);
});
