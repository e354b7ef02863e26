import t from 'tap';
import type { Applied } from '../../../daemon/state/apply-command.js';
import { emptyClusterState, replicaNodeIds, type ClusterState, type VolumeRecord } from '../../../daemon/state/cluster-state.js';
import { decodeCommand, type Command } from '../../../daemon/state/commands.js';
import { ADDRESSES, ok, refused, withNodes as withNodesJoined } from './helpers/cluster-state-fixture.js';

const GiB = 1024 ** 3;

function withNodes(...ids: string[]): ClusterState {
  return withNodesJoined(ids, '2026-01-01T00:00:00.000Z');
}

function create(name: string, extra: Partial<{ sizeBytes: number; replicaCount: number; id: string }> = {}): Command {
  const base = { type: 'volume.create', id: extra.id ?? `id-${name}`, name, sizeBytes: extra.sizeBytes ?? GiB, createdAt: '2026-01-01T00:00:00.000Z' } as const;
  return extra.replicaCount === undefined ? base : { ...base, replicaCount: extra.replicaCount };
}

function volumeOf(applied: Applied): VolumeRecord {
  if (applied.result.type !== 'volume') throw new Error('expected a volume result');
  return applied.result.volume;
}

t.test('cluster.init sets the id once', async (t) => {
  const state = ok(emptyClusterState(), { type: 'cluster.init', clusterId: 'abc' }).state;
  t.equal(state.clusterId, 'abc');
  t.equal(refused(state, { type: 'cluster.init', clusterId: 'def' }).code, 'INVALID_ARGUMENT');
  t.equal(refused(emptyClusterState(), { type: 'cluster.init', clusterId: '' }).code, 'INVALID_ARGUMENT');
});

t.test('node.join adds and updates nodes', async (t) => {
  const state = withNodes('n1');
  t.same(state.nodes['n1'], {
    id: 'n1',
    addresses: ADDRESSES,
    labels: {},
    state: 'up',
    stateSince: '2026-01-01T00:00:00.000Z',
    joinedAt: '2026-01-01T00:00:00.000Z',
    capacityBytes: 0,
    freeBytes: 0,
    diskCount: 0,
    capacityReportedAt: null,
  });
  const moved = ok(state, { type: 'node.join', nodeId: 'n1', addresses: { ...ADDRESSES, nbd: '0.0.0.0:10809' }, joinedAt: '2026-01-01T00:00:00.000Z' }).state;
  t.equal(moved.nodes['n1']?.addresses.nbd, '0.0.0.0:10809');
  t.equal(Object.keys(moved.nodes).length, 1);
  t.equal(refused(state, { type: 'node.join', nodeId: '-bad', addresses: ADDRESSES, joinedAt: '2026-01-01T00:00:00.000Z' }).code, 'INVALID_ARGUMENT');
  t.match(refused(state, { type: 'node.join', nodeId: 'n2', addresses: { ...ADDRESSES, api: '' }, joinedAt: '2026-01-01T00:00:00.000Z' }).message, /api address/);
  let full = state;
  for (let index = 2; index <= 64; index += 1) full = ok(full, { type: 'node.join', nodeId: `n${index}`, addresses: ADDRESSES, joinedAt: '2026-01-01T00:00:00.000Z' }).state;
  t.match(refused(full, { type: 'node.join', nodeId: 'n65', addresses: ADDRESSES, joinedAt: '2026-01-01T00:00:00.000Z' }).message, /maximum of 64 nodes/);
  t.ok(ok(full, { type: 'node.join', nodeId: 'n1', addresses: ADDRESSES, joinedAt: '2026-01-01T00:00:00.000Z' }), 're-registering a member is fine when full');
});

t.test('volume.create', async (t) => {
  const before = withNodes('n1');
  const applied = ok(before, create('db1'));
  t.same(volumeOf(applied), {
    id: 'id-db1',
    name: 'db1',
    sizeBytes: GiB,
    replicaCount: 1,
    createdAt: '2026-01-01T00:00:00.000Z',
    attachedTo: null,
    generation: 0,
    replicas: [{ nodeId: 'n1', state: 'in-sync', since: '2026-01-01T00:00:00.000Z' }],
    graceMs: 600_000,
  });
  t.same(before.volumes, {}, 'the old state is untouched');
  t.equal(refused(applied.state, create('db1', { id: 'other' })).code, 'VOLUME_EXISTS');
  t.match(refused(applied.state, create('db2', { id: 'id-db1' })).message, /already in use/);
});

t.test('volume.create: default replica count is min(3, nodes) and placement is deterministic', async (t) => {
  t.equal(volumeOf(ok(withNodes('a', 'b'), create('v'))).replicaCount, 2);
  const four = volumeOf(ok(withNodes('d', 'c', 'b', 'a'), create('v')));
  t.equal(four.replicaCount, 3);
  t.same(replicaNodeIds(four), ['a', 'b', 'c']);
  t.same(replicaNodeIds(volumeOf(ok(withNodes('a', 'b', 'c'), create('v', { replicaCount: 1 })))).map(String), ['a']);
});

t.test('volume.create refusals', async (t) => {
  const state = withNodes('n1');
  for (const name of ['', 'UPPER', '-lead', 'trail-', 'under_score', 'dot.ted', 'a'.repeat(64), 'spa ce', '__proto__']) {
    const err = refused(state, create(name));
    t.equal(err.code, 'INVALID_NAME', name);
    t.match(err.message, /use 1-63 characters of a-z, 0-9 and "-"/);
  }
  t.ok(ok(state, create('a'.repeat(63))), '63 characters are fine');
  t.ok(ok(state, create('0-x-9')), 'digits and inner dashes are fine');
  for (const sizeBytes of [0, -512, 1000, 512.5, Number.NaN, 2 ** 51]) {
    t.equal(refused(state, create('v', { sizeBytes })).code, 'INVALID_SIZE', String(sizeBytes));
  }
  t.match(refused(state, create('v', { sizeBytes: 1000 })).message, /multiple of 512/);
  for (const replicaCount of [0, 6, 1.5]) {
    t.match(refused(withNodes('a', 'b', 'c', 'd', 'e', 'f'), create('v', { replicaCount })).message, /replica count must be 1 to 5/);
  }
  const err = refused(state, create('v', { replicaCount: 3 }));
  t.equal(err.code, 'INVALID_ARGUMENT');
  t.equal(err.message, '3 replicas need 3 nodes; the cluster has 1');
  t.equal(refused(emptyClusterState(), create('v')).code, 'INVALID_ARGUMENT', 'no nodes, no replicas');
  t.match(refused(state, { ...create('v'), type: 'volume.create', createdAt: 'yesterday' } as Command).message, /not a timestamp/);
});

t.test('volume.create stops at the volume limit', async (t) => {
  let state = withNodes('n1');
  const volumes: Record<string, VolumeRecord> = {};
  for (let index = 0; index < 10_000; index += 1) {
    const name = `v${index}`;
    volumes[name] = { id: name, name, sizeBytes: 512, replicaCount: 1, createdAt: '', attachedTo: null, generation: 0, replicas: [], graceMs: 0 };
  }
  state = { ...state, volumes };
  t.equal(refused(state, create('one-more')).code, 'NO_SPACE');
});

t.test('volume.resize grows only', async (t) => {
  const state = ok(withNodes('n1'), create('v')).state;
  t.equal(volumeOf(ok(state, { type: 'volume.resize', name: 'v', sizeBytes: 2 * GiB })).sizeBytes, 2 * GiB);
  t.equal(volumeOf(ok(state, { type: 'volume.resize', name: 'v', sizeBytes: GiB })).sizeBytes, GiB, 'same size is a no-op');
  const shrink = refused(state, { type: 'volume.resize', name: 'v', sizeBytes: GiB - 512 });
  t.equal(shrink.code, 'INVALID_SIZE');
  t.match(shrink.message, /can only grow/);
  t.equal(refused(state, { type: 'volume.resize', name: 'v', sizeBytes: 2 * GiB + 1 }).code, 'INVALID_SIZE');
  t.equal(refused(state, { type: 'volume.resize', name: 'nope', sizeBytes: 2 * GiB }).code, 'VOLUME_NOT_FOUND');
});

t.test('volume.attach bumps the generation on every change of owner (invariant 3)', async (t) => {
  let state = ok(withNodes('n1', 'n2'), create('v')).state;
  const first = ok(state, { type: 'volume.attach', name: 'v', nodeId: 'n1' });
  t.equal(volumeOf(first).attachedTo, 'n1');
  t.equal(volumeOf(first).generation, 1);
  state = first.state;
  const again = ok(state, { type: 'volume.attach', name: 'v', nodeId: 'n1' });
  t.equal(again.state, state, 'attaching to the current owner changes nothing');
  const taken = refused(state, { type: 'volume.attach', name: 'v', nodeId: 'n2' });
  t.equal(taken.code, 'VOLUME_ATTACHED');
  t.same(taken.details, { name: 'v', attachedTo: 'n1' });
  const forced = ok(state, { type: 'volume.attach', name: 'v', nodeId: 'n2', force: true });
  t.equal(volumeOf(forced).attachedTo, 'n2');
  t.equal(volumeOf(forced).generation, 2);
  const detached = ok(forced.state, { type: 'volume.detach', name: 'v' }).state;
  t.equal(volumeOf(ok(detached, { type: 'volume.attach', name: 'v', nodeId: 'n1' })).generation, 3);
  t.equal(refused(state, { type: 'volume.attach', name: 'v', nodeId: 'ghost' }).code, 'NODE_NOT_FOUND');
  t.equal(refused(state, { type: 'volume.attach', name: 'nope', nodeId: 'n1' }).code, 'VOLUME_NOT_FOUND');
});

t.test('volume.detach', async (t) => {
  const attached = ok(ok(withNodes('n1'), create('v')).state, { type: 'volume.attach', name: 'v', nodeId: 'n1' }).state;
  const detached = ok(attached, { type: 'volume.detach', name: 'v' });
  t.equal(volumeOf(detached).attachedTo, null);
  t.equal(volumeOf(detached).generation, 1, 'detach keeps the generation');
  t.equal(ok(detached.state, { type: 'volume.detach', name: 'v' }).state, detached.state, 'detaching twice is a no-op');
  t.equal(refused(attached, { type: 'volume.detach', name: 'nope' }).code, 'VOLUME_NOT_FOUND');
});

t.test('volume.delete refuses attached volumes', async (t) => {
  const created = ok(withNodes('n1'), create('v')).state;
  const attached = ok(created, { type: 'volume.attach', name: 'v', nodeId: 'n1' }).state;
  const err = refused(attached, { type: 'volume.delete', name: 'v' });
  t.equal(err.code, 'VOLUME_ATTACHED');
  t.match(err.message, /attached to node n1; detach it first/);
  const deleted = ok(created, { type: 'volume.delete', name: 'v' });
  t.same(deleted.state.volumes, {});
  t.equal(volumeOf(deleted).name, 'v', 'the result carries the deleted volume');
  t.equal(refused(deleted.state, { type: 'volume.delete', name: 'v' }).code, 'VOLUME_NOT_FOUND');
});

t.test('lookups ignore inherited properties', async (t) => {
  const state = withNodes('n1');
  t.equal(refused(state, { type: 'volume.delete', name: 'constructor' }).code, 'VOLUME_NOT_FOUND');
  t.equal(refused(state, { type: 'volume.attach', name: 'toString', nodeId: 'n1' }).code, 'VOLUME_NOT_FOUND');
});

t.test('commands survive a JSON round trip and decode checks their shape', async (t) => {
  const command = create('v', { replicaCount: 1 });
  t.same(decodeCommand(JSON.parse(JSON.stringify(command))), command);
  t.same(decodeCommand({ type: 'volume.attach', name: 'v', nodeId: 'n1' }), { type: 'volume.attach', name: 'v', nodeId: 'n1' });
  for (const bad of [null, [], 'x', { type: 'volume.explode' }, { type: 'volume.delete' }, { type: 'volume.delete', name: 1 },
    { type: 'volume.delete', name: 'v', extra: true }, { type: 'volume.attach', name: 'v', nodeId: 'n', force: 'yes' },
    { type: 'node.join', nodeId: 'n', addresses: null, joinedAt: '2026-01-01T00:00:00.000Z' }, { type: '__proto__' }]) {
    t.throws(() => decodeCommand(bad), { code: 'INVALID_ARGUMENT' }, JSON.stringify(bad));
  }
});

t.test('apply is deterministic: same commands, same state', async (t) => {
  const commands: Command[] = [
    { type: 'cluster.init', clusterId: 'c' },
    { type: 'node.join', nodeId: 'n1', addresses: ADDRESSES, joinedAt: '2026-01-01T00:00:00.000Z' },
    create('a'),
    create('b', { sizeBytes: 4096 }),
    { type: 'volume.attach', name: 'a', nodeId: 'n1' },
    { type: 'volume.resize', name: 'b', sizeBytes: 8192 },
    { type: 'volume.delete', name: 'b' },
  ];
  const replay = (): ClusterState => commands.reduce((state, command) => ok(state, command).state, emptyClusterState());
  t.same(replay(), replay());
  t.same(JSON.parse(JSON.stringify(replay())), replay(), 'the state is plain JSON');
});
