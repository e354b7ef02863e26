import t from 'tap';
import { pino } from 'pino';
import { capacityCommand } from '../../../daemon/cluster/capacity-reporter.js';
import { decideLiveness, LivenessMonitor } from '../../../daemon/cluster/liveness-monitor.js';
import { applyCommand } from '../../../daemon/state/apply-command.js';
import { emptyClusterState, type ClusterState } from '../../../daemon/state/cluster-state.js';
import type { Command } from '../../../daemon/state/commands.js';
import { PlinthError } from '../../../common/plinth-error.js';

const ADDRESSES = { api: 'a:1', peer: 'a:2', nbd: 'a:3', iscsi: 'a:4' };
const AT = '2026-03-01T00:00:00.000Z';

function apply(state: ClusterState, ...commands: Command[]): ClusterState {
  return commands.reduce((current, command) => {
    const outcome = applyCommand(current, command);
    if (outcome instanceof PlinthError) throw outcome;
    return outcome.state;
  }, state);
}

function cluster(...ids: string[]): ClusterState {
  return apply(emptyClusterState(), ...ids.map((nodeId): Command => ({ type: 'node.join', nodeId, addresses: ADDRESSES, joinedAt: AT })));
}

t.test('decideLiveness: silence past the timeout is down, contact again is up', async (t) => {
  const state = cluster('l', 'a', 'b');
  const contacts = new Map([['a', 9_000], ['b', 2_000]]);
  const base = { state, selfId: 'l', nowMs: 10_000, leaderSinceMs: 0, lastContactMs: (id: string) => contacts.get(id), downAfterMs: 5000 };
  t.same(decideLiveness(base), [{ nodeId: 'b', state: 'down' }]);
  t.same(decideLiveness({ ...base, leaderSinceMs: 6_000 }), [], 'a fresh leader judges silence only from when it began to lead');
  const bDown = apply(state, { type: 'node.down', nodeId: 'b', at: AT });
  t.same(decideLiveness({ ...base, state: bDown }), [], 'still silent: no change');
  contacts.set('b', 9_500);
  t.same(decideLiveness({ ...base, state: bDown }), [{ nodeId: 'b', state: 'up' }]);
  const selfDown = apply(state, { type: 'node.down', nodeId: 'l', at: AT });
  t.same(decideLiveness({ ...base, state: selfDown, lastContactMs: () => 9_999 }), [{ nodeId: 'l', state: 'up' }], 'a leader marked down is back');
  t.same(decideLiveness({ ...base, lastContactMs: () => undefined, leaderSinceMs: 1_000 }), [
    { nodeId: 'a', state: 'down' },
    { nodeId: 'b', state: 'down' },
  ]);
});

t.test('LivenessMonitor proposes only on the leader', async (t) => {
  let state = cluster('l', 'a');
  let leader = false;
  let nowMs = 0;
  const proposed: Command[] = [];
  const monitor = new LivenessMonitor(
    { selfId: 'l', downAfterMs: 1000, checkEveryMs: 60_000 },
    {
      isLeader: () => leader,
      state: () => state,
      lastContactMs: () => undefined,
      propose: async (command) => {
        proposed.push(command);
        state = apply(state, command);
      },
      logger: pino({ level: 'silent' }),
      nowMs: () => nowMs,
    },
  );
  t.teardown(() => monitor.stop());
  nowMs = 5000;
  await monitor.check();
  t.same(proposed, [], 'a follower proposes nothing');
  leader = true;
  await monitor.check();
  t.same(proposed, [], 'leadership just began');
  nowMs = 6001;
  await monitor.check();
  t.same(proposed, [{ type: 'node.down', nodeId: 'a', at: new Date(6001).toISOString() }]);
  await monitor.check();
  t.equal(proposed.length, 1, 'committed once');
});

t.test('capacityCommand reports first, then only on drift', async (t) => {
  const options = { nodeId: 'a', everyMs: 1000, minChangeFraction: 0.01 };
  const disk = { id: 'd', path: '/d', kind: 'file', capacityBytes: 1000, usedBytes: 100, extentSizeBytes: 1 } as const;
  const stats = { poolId: 'p', extentSizeBytes: 1, capacityBytes: 1000, usedBytes: 100, disks: [disk] };
  const state = cluster('a');
  const first = capacityCommand(options, state, stats, AT);
  t.same(first, { type: 'node.capacity', nodeId: 'a', capacityBytes: 1000, freeBytes: 900, diskCount: 1, at: AT });
  const reported = apply(state, first as Command);
  t.equal(capacityCommand(options, reported, { ...stats, usedBytes: 105 }, AT), null, 'within 1%: no report');
  t.match(capacityCommand(options, reported, { ...stats, usedBytes: 200 }, AT), { freeBytes: 800 });
  t.equal(capacityCommand({ ...options, nodeId: 'ghost' }, reported, stats, AT), null, 'not a member yet: nothing to report');
});
