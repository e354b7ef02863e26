import t from 'tap';
import { inSyncNodeIds, type ClusterState, type VolumeRecord } from '../../../daemon/state/cluster-state.js';
import { decodeCommand, type Command } from '../../../daemon/state/commands.js';
import { ADDRESSES, ok, refused, withNodes } from './helpers/cluster-state-fixture.js';

const AT = '2026-02-01T00:00:00.000Z';
const LATER = '2026-02-01T00:05:00.000Z';

function apply(state: ClusterState, ...commands: Command[]): ClusterState {
  return commands.reduce((current, command) => ok(current, command).state, state);
}

function cluster(...ids: string[]): ClusterState {
  return withNodes(ids, AT);
}

function volume(state: ClusterState, name = 'v'): VolumeRecord {
  const found = state.volumes[name];
  if (found === undefined) throw new Error(`no volume ${name}`);
  return found;
}

/** n1..n3 with a 3-replica volume "v" attached to n1 at generation 1. */
function attached(): ClusterState {
  return apply(
    cluster('n1', 'n2', 'n3', 'n4'),
    { type: 'volume.create', id: 'id-v', name: 'v', sizeBytes: 4096, createdAt: AT, placement: ['n1', 'n2', 'n3'] },
    { type: 'volume.attach', name: 'v', nodeId: 'n1' },
  );
}

t.test('node.join keeps labels, re-join keeps history', async (t) => {
  const state = apply(cluster(), { type: 'node.join', nodeId: 'a', addresses: ADDRESSES, labels: { zone: 'z1', rack: 'r1' }, joinedAt: AT });
  t.same(state.nodes['a']?.labels, { zone: 'z1', rack: 'r1' });
  const down = apply(state, { type: 'node.down', nodeId: 'a', at: LATER });
  const rejoined = apply(down, { type: 'node.join', nodeId: 'a', addresses: { ...ADDRESSES, api: 'h:1' }, joinedAt: LATER });
  t.equal(rejoined.nodes['a']?.joinedAt, AT, 'joinedAt is the first join');
  t.equal(rejoined.nodes['a']?.state, 'down', 'liveness is the leader’s to change');
  t.equal(rejoined.nodes['a']?.addresses.api, 'h:1');
  t.equal(refused(state, { type: 'node.join', nodeId: 'b', addresses: ADDRESSES, labels: { zone: '' }, joinedAt: AT }).code, 'INVALID_ARGUMENT');
  const odd = { type: 'node.join', nodeId: 'b', addresses: ADDRESSES, labels: { planet: 'x' }, joinedAt: AT } as unknown as Command;
  t.match(refused(state, odd).message, /labels are zone and rack/);
  t.match(refused(state, { type: 'node.join', nodeId: 'b', addresses: ADDRESSES, joinedAt: 'soon' }).message, /not a timestamp/);
});

t.test('node.down / node.up change liveness once', async (t) => {
  const state = cluster('a');
  const down = ok(state, { type: 'node.down', nodeId: 'a', at: LATER });
  t.equal(down.state.nodes['a']?.state, 'down');
  t.equal(down.state.nodes['a']?.stateSince, LATER);
  t.equal(ok(down.state, { type: 'node.down', nodeId: 'a', at: AT }).state, down.state, 'down twice is a no-op');
  t.equal(apply(down.state, { type: 'node.up', nodeId: 'a', at: AT }).nodes['a']?.state, 'up');
  t.equal(refused(state, { type: 'node.down', nodeId: 'ghost', at: AT }).code, 'NODE_NOT_FOUND');
});

t.test('node.capacity records the summary and checks it', async (t) => {
  const state = apply(cluster('a'), { type: 'node.capacity', nodeId: 'a', capacityBytes: 1000, freeBytes: 600, diskCount: 2, at: LATER });
  t.match(state.nodes['a'], { capacityBytes: 1000, freeBytes: 600, diskCount: 2, capacityReportedAt: LATER });
  const base = { type: 'node.capacity', nodeId: 'a', capacityBytes: 1000, freeBytes: 600, diskCount: 1, at: AT } as const;
  t.equal(refused(state, { ...base, freeBytes: 2000 }).code, 'INVALID_ARGUMENT');
  t.equal(refused(state, { ...base, capacityBytes: -1 }).code, 'INVALID_ARGUMENT');
  t.equal(refused(state, { ...base, diskCount: 1.5 }).code, 'INVALID_ARGUMENT');
  t.equal(refused(state, { ...base, nodeId: 'ghost' }).code, 'NODE_NOT_FOUND');
});

t.test('volume.create takes the proposer’s placement and grace', async (t) => {
  const state = cluster('a', 'b', 'c');
  const created = apply(state, { type: 'volume.create', id: 'i', name: 'v', sizeBytes: 512, createdAt: AT, placement: ['c', 'a'], graceMs: 5000 });
  t.same(volume(created).replicas, [
    { nodeId: 'c', state: 'in-sync', since: AT },
    { nodeId: 'a', state: 'in-sync', since: AT },
  ]);
  t.equal(volume(created).replicaCount, 2, 'the count follows the placement');
  t.equal(volume(created).graceMs, 5000);
  const base = { type: 'volume.create', id: 'i', name: 'v', sizeBytes: 512, createdAt: AT } as const;
  t.equal(refused(state, { ...base, placement: ['a', 'a'] }).code, 'INVALID_ARGUMENT');
  t.equal(refused(state, { ...base, placement: ['a', 'ghost'] }).code, 'NODE_NOT_FOUND');
  t.match(refused(state, { ...base, replicaCount: 3, placement: ['a', 'b'] }).message, /placement must name 3 distinct nodes/);
  t.equal(refused(state, { ...base, graceMs: -1 }).code, 'INVALID_ARGUMENT');
});

t.test('volume.attach: live owner refuses, down owner fails over, expectedGeneration fences', async (t) => {
  const state = attached();
  const taken = refused(state, { type: 'volume.attach', name: 'v', nodeId: 'n2' });
  t.equal(taken.code, 'VOLUME_ATTACHED');
  t.same(taken.details, { name: 'v', attachedTo: 'n1' });
  t.match(taken.message, /attached to node n1/);
  const ownerDown = apply(state, { type: 'node.down', nodeId: 'n1', at: LATER });
  const failover = apply(ownerDown, { type: 'volume.attach', name: 'v', nodeId: 'n2', expectedGeneration: 1 });
  t.equal(volume(failover).attachedTo, 'n2');
  t.equal(volume(failover).generation, 2);
  const stale = refused(failover, { type: 'volume.attach', name: 'v', nodeId: 'n3', expectedGeneration: 1 });
  t.equal(stale.code, 'FENCED');
  t.same(stale.details, { name: 'v', generation: 2, expectedGeneration: 1 });
  const reattach = apply(state, { type: 'volume.attach', name: 'v', nodeId: 'n1', force: true });
  t.equal(volume(reattach).generation, 2, 'a forced re-attach on the owner bumps the generation');
  t.equal(volume(apply(state, { type: 'volume.attach', name: 'v', nodeId: 'n2', force: true })).generation, 2);
});

t.test('replica.fault only from the current generation, never the last in-sync copy', async (t) => {
  const state = attached();
  const faulted = ok(state, { type: 'replica.fault', name: 'v', nodeId: 'n2', generation: 1, at: LATER });
  t.same(inSyncNodeIds(volume(faulted.state)), ['n1', 'n3']);
  t.same(volume(faulted.state).replicas[1], { nodeId: 'n2', state: 'faulted', since: LATER, dataGeneration: 1 });
  t.equal(ok(faulted.state, { type: 'replica.fault', name: 'v', nodeId: 'n2', generation: 1, at: AT }).state, faulted.state, 'idempotent');
  const stale = refused(state, { type: 'replica.fault', name: 'v', nodeId: 'n2', generation: 0, at: LATER });
  t.equal(stale.code, 'FENCED');
  t.same(stale.details, { name: 'v', generation: 0, currentGeneration: 1 });
  const two = apply(faulted.state, { type: 'replica.fault', name: 'v', nodeId: 'n3', generation: 1, at: LATER });
  const last = refused(two, { type: 'replica.fault', name: 'v', nodeId: 'n1', generation: 1, at: LATER });
  t.equal(last.code, 'LAST_IN_SYNC_REPLICA');
  t.same(last.details, { name: 'v', nodeId: 'n1' });
  t.equal(refused(state, { type: 'replica.fault', name: 'v', nodeId: 'n4', generation: 1, at: LATER }).code, 'INVALID_ARGUMENT');
  t.equal(refused(state, { type: 'replica.fault', name: 'x', nodeId: 'n1', generation: 1, at: LATER }).code, 'VOLUME_NOT_FOUND');
});

t.test('replica.rebuilding then replica.in-sync brings a replica back (invariant 4)', async (t) => {
  const faulted = apply(attached(), { type: 'replica.fault', name: 'v', nodeId: 'n2', generation: 1, at: AT });
  const tooEarly = refused(faulted, { type: 'replica.in-sync', name: 'v', nodeId: 'n2', generation: 1, at: LATER });
  t.match(tooEarly.message, /is faulted; replica.in-sync needs rebuilding/);
  const rebuilding = apply(faulted, { type: 'replica.rebuilding', name: 'v', nodeId: 'n2', generation: 1, at: LATER });
  t.equal(volume(rebuilding).replicas[1]?.state, 'rebuilding');
  t.equal(refused(rebuilding, { type: 'replica.in-sync', name: 'v', nodeId: 'n2', generation: 0, at: LATER }).code, 'FENCED');
  const back = apply(rebuilding, { type: 'replica.in-sync', name: 'v', nodeId: 'n2', generation: 1, at: LATER });
  t.same(inSyncNodeIds(volume(back)), ['n1', 'n2', 'n3']);
  t.equal(refused(back, { type: 'replica.rebuilding', name: 'v', nodeId: 'n2', generation: 1, at: LATER }).code, 'INVALID_ARGUMENT');
  const refaulted = apply(rebuilding, { type: 'replica.fault', name: 'v', nodeId: 'n2', generation: 1, at: LATER });
  t.equal(volume(refaulted).replicas[1]?.state, 'faulted', 'a rebuild can fail');
});

t.test('replica.add and replica.remove', async (t) => {
  const state = attached();
  const added = apply(state, { type: 'replica.add', name: 'v', nodeId: 'n4', at: LATER });
  t.same(volume(added).replicas[3], { nodeId: 'n4', state: 'rebuilding', since: LATER });
  t.match(refused(added, { type: 'replica.add', name: 'v', nodeId: 'n4', at: LATER }).message, /already has a replica/);
  const five = apply(cluster('n1', 'n2', 'n3', 'n4', 'n5'), { type: 'volume.create', id: 'i', name: 'v', sizeBytes: 512, createdAt: AT, placement: ['n1'] },
    { type: 'replica.add', name: 'v', nodeId: 'n2', at: AT });
  t.match(refused(five, { type: 'replica.add', name: 'v', nodeId: 'n3', at: AT }).message, /remove one first/);
  t.equal(refused(state, { type: 'replica.add', name: 'v', nodeId: 'ghost', at: AT }).code, 'NODE_NOT_FOUND');
  const removed = apply(added, { type: 'replica.remove', name: 'v', nodeId: 'n3' });
  t.same(volume(removed).replicas.map((r) => r.nodeId), ['n1', 'n2', 'n4']);
  const single = apply(cluster('a', 'b'), { type: 'volume.create', id: 'i', name: 'v', sizeBytes: 512, createdAt: AT, placement: ['a'] },
    { type: 'replica.add', name: 'v', nodeId: 'b', at: AT });
  t.equal(refused(single, { type: 'replica.remove', name: 'v', nodeId: 'a' }).code, 'LAST_IN_SYNC_REPLICA', 'b is still rebuilding');
  t.same(volume(apply(single, { type: 'replica.remove', name: 'v', nodeId: 'b' })).replicas.map((r) => r.nodeId), ['a']);
});

t.test('node.remove drops replicas but never the last in-sync copy', async (t) => {
  const state = attached();
  const removed = ok(state, { type: 'node.remove', nodeId: 'n1' });
  t.equal(removed.state.nodes['n1'], undefined);
  t.same(volume(removed.state).replicas.map((r) => r.nodeId), ['n2', 'n3']);
  t.equal(volume(removed.state).attachedTo, null, 'its volumes are left detached');
  t.equal(removed.result.type === 'node' ? removed.result.node.id : '', 'n1');
  const lonely = apply(cluster('a', 'b'), { type: 'volume.create', id: 'i', name: 'solo', sizeBytes: 512, createdAt: AT, placement: ['a'] });
  const err = refused(lonely, { type: 'node.remove', nodeId: 'a' });
  t.equal(err.code, 'LAST_IN_SYNC_REPLICA');
  t.same(err.details, { nodeId: 'a', volumes: ['solo'] });
  t.ok(ok(lonely, { type: 'node.remove', nodeId: 'b' }), 'a node without replicas goes');
  t.equal(refused(lonely, { type: 'node.remove', nodeId: 'ghost' }).code, 'NODE_NOT_FOUND');
});

t.test('new commands decode and are deterministic', async (t) => {
  const commands: Command[] = [
    { type: 'node.capacity', nodeId: 'n1', capacityBytes: 10, freeBytes: 5, diskCount: 1, at: AT },
    { type: 'replica.fault', name: 'v', nodeId: 'n2', generation: 1, at: AT },
    { type: 'replica.rebuilding', name: 'v', nodeId: 'n2', generation: 1, at: AT },
    { type: 'replica.in-sync', name: 'v', nodeId: 'n2', generation: 1, at: AT },
    { type: 'replica.add', name: 'v', nodeId: 'n4', at: AT },
    { type: 'replica.remove', name: 'v', nodeId: 'n4' },
    { type: 'node.down', nodeId: 'n1', at: AT },
    { type: 'volume.attach', name: 'v', nodeId: 'n2', expectedGeneration: 1 },
    { type: 'node.remove', nodeId: 'n3' },
  ];
  for (const command of commands) t.same(decodeCommand(JSON.parse(JSON.stringify(command))), command, command.type);
  t.throws(() => decodeCommand({ type: 'volume.create', id: 'i', name: 'v', sizeBytes: 1, createdAt: AT, placement: [1] }), { code: 'INVALID_ARGUMENT' });
  t.throws(() => decodeCommand({ type: 'replica.fault', name: 'v', nodeId: 'n', at: AT }), { code: 'INVALID_ARGUMENT' });
  const replay = (): ClusterState => apply(attached(), ...commands);
  t.same(replay(), replay());
  t.same(volume(replay()).attachedTo, 'n2');
});
