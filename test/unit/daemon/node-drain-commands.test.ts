import t from 'tap';
import { PlinthError } from '../../../common/plinth-error.js';
import { choosePlacement } from '../../../daemon/control/volume-placement.js';
import { applyCommand } from '../../../daemon/state/apply-command.js';
import { emptyClusterState, isNodeDraining, type ClusterState } from '../../../daemon/state/cluster-state.js';
import { decodeCommand, type Command } from '../../../daemon/state/commands.js';

const ADDRESSES = { api: '127.0.0.1:9700', peer: '127.0.0.1:9701', nbd: '127.0.0.1:10809', iscsi: '127.0.0.1:3260' };
const AT = '2026-02-01T00:00:00.000Z';
const LATER = '2026-02-01T00:05:00.000Z';

function apply(state: ClusterState, ...commands: Command[]): ClusterState {
  return commands.reduce((current, command) => {
    const outcome = applyCommand(current, command);
    if (outcome instanceof PlinthError) throw outcome;
    return outcome.state;
  }, state);
}

function cluster(...ids: string[]): ClusterState {
  return apply(
    emptyClusterState(),
    { type: 'cluster.init', clusterId: 'c1' },
    ...ids.map((nodeId): Command => ({ type: 'node.join', nodeId, addresses: ADDRESSES, joinedAt: AT })),
    ...ids.map((nodeId): Command => ({ type: 'node.capacity', nodeId, capacityBytes: 1000, freeBytes: 900, diskCount: 1, at: AT })),
  );
}

t.test('node.drain marks and unmarks a node; repeats keep the first time', async (t) => {
  const base = cluster('a', 'b');
  t.notOk(isNodeDraining(base, 'a'), 'a fresh node is not draining');
  const draining = apply(base, { type: 'node.drain', nodeId: 'a', draining: true, at: AT });
  t.ok(isNodeDraining(draining, 'a'));
  t.equal(draining.nodes['a']?.drainingSince, AT);
  t.notOk(isNodeDraining(draining, 'b'));
  const again = apply(draining, { type: 'node.drain', nodeId: 'a', draining: true, at: LATER });
  t.equal(again, draining, 'draining a draining node changes nothing (same state object)');
  const cancelled = apply(again, { type: 'node.drain', nodeId: 'a', draining: false, at: LATER });
  t.notOk(isNodeDraining(cancelled, 'a'));
  t.notOk(Object.hasOwn(cancelled.nodes['a'] ?? {}, 'drainingSince'), 'undrain removes the field: the record is as before');
  t.same(cancelled.nodes['a'], base.nodes['a']);
});

t.test('node.drain is refused for strangers and bad timestamps', async (t) => {
  const base = cluster('a');
  const stranger = applyCommand(base, { type: 'node.drain', nodeId: 'zz', draining: true, at: AT });
  t.ok(stranger instanceof PlinthError && stranger.code === 'NODE_NOT_FOUND', 'unknown node');
  const badTime = applyCommand(base, { type: 'node.drain', nodeId: 'a', draining: true, at: 'yesterday' });
  t.ok(badTime instanceof PlinthError && badTime.code === 'INVALID_ARGUMENT', 'bad timestamp');
});

t.test('node.drain decodes from the log; a malformed one is refused', async (t) => {
  t.same(decodeCommand({ type: 'node.drain', nodeId: 'a', draining: false, at: AT }), { type: 'node.drain', nodeId: 'a', draining: false, at: AT });
  t.throws(() => decodeCommand({ type: 'node.drain', nodeId: 'a', draining: 'yes', at: AT }), { code: 'INVALID_ARGUMENT' });
  t.throws(() => decodeCommand({ type: 'node.drain', nodeId: 'a', at: AT }), { code: 'INVALID_ARGUMENT' });
});

t.test('a node record from before drain existed (no field) reads as not draining', async (t) => {
  const old: ClusterState = JSON.parse(JSON.stringify(cluster('a'))) as ClusterState;
  t.notOk(isNodeDraining(old, 'a'));
  t.ok(isNodeDraining(apply(old, { type: 'node.drain', nodeId: 'a', draining: true, at: AT }), 'a'));
});

t.test('new volumes are never placed on a draining node', async (t) => {
  const state = apply(cluster('a', 'b', 'c', 'd'), { type: 'node.drain', nodeId: 'b', draining: true, at: AT });
  for (let round = 0; round < 5; round += 1) {
    const placement = choosePlacement(state, { name: `v${round}`, sizeBytes: 4096, replicaCount: 3 }, 'b');
    t.notOk(placement.includes('b'), `placement ${placement.join(',')} avoids b even when created on b`);
    t.equal(placement.length, 3);
  }
  t.equal(choosePlacement(state, { name: 'd', sizeBytes: 4096 }, 'a').length, 3, 'default count counts non-draining nodes');
  const two = apply(cluster('a', 'b'), { type: 'node.drain', nodeId: 'b', draining: true, at: AT });
  t.throws(() => choosePlacement(two, { name: 'x', sizeBytes: 4096, replicaCount: 2 }, 'a'), { code: 'INVALID_ARGUMENT' }, 'too few eligible nodes');
  t.same(choosePlacement(two, { name: 'x', sizeBytes: 4096 }, 'a'), ['a'], 'the default shrinks to the eligible nodes');
});

t.test('node rm of a last in-sync holder suggests draining', async (t) => {
  const state = apply(cluster('a', 'b'), { type: 'volume.create', id: 'id1', name: 'v', sizeBytes: 4096, replicaCount: 1, createdAt: AT, placement: ['a'] });
  const refusal = applyCommand(state, { type: 'node.remove', nodeId: 'a' });
  t.ok(refusal instanceof PlinthError && refusal.code === 'LAST_IN_SYNC_REPLICA');
  t.match(refusal instanceof PlinthError ? refusal.message : '', /plinth node drain a/);
});
