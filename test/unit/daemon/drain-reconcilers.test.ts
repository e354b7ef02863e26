import pino from 'pino';
import t from 'tap';
import { PlinthError } from '../../../common/plinth-error.js';
import { DrainAttachments } from '../../../daemon/reconciler/drain-attachments.js';
import { LeaderReconciler, proposeReplicaMove } from '../../../daemon/reconciler/leader-reconciler.js';
import type { ReplicaMove } from '../../../daemon/reconciler/replica-moves.js';
import { applyCommand } from '../../../daemon/state/apply-command.js';
import { emptyClusterState, type ClusterState } from '../../../daemon/state/cluster-state.js';
import type { Command } from '../../../daemon/state/commands.js';

const ADDRESSES = { api: '127.0.0.1:9700', peer: '127.0.0.1:9701', nbd: '127.0.0.1:10809', iscsi: '127.0.0.1:3260' };
const AT = '2026-02-01T00:00:00.000Z';
const logger = pino({ level: 'silent' });

function apply(state: ClusterState, ...commands: Command[]): ClusterState {
  return commands.reduce((current, command) => {
    const outcome = applyCommand(current, command);
    if (outcome instanceof PlinthError) throw outcome;
    return outcome.state;
  }, state);
}

function base(): ClusterState {
  return apply(
    emptyClusterState(),
    { type: 'cluster.init', clusterId: 'c1' },
    ...['a', 'b'].map((nodeId): Command => ({ type: 'node.join', nodeId, addresses: ADDRESSES, joinedAt: AT })),
    { type: 'volume.create', id: 'i1', name: 'idle', sizeBytes: 4096, createdAt: AT, placement: ['a'] },
    { type: 'volume.create', id: 'i2', name: 'busy', sizeBytes: 4096, createdAt: AT, placement: ['a'] },
    { type: 'volume.attach', name: 'idle', nodeId: 'a' },
    { type: 'volume.attach', name: 'busy', nodeId: 'a' },
  );
}

t.test('the draining node detaches idle volumes and keeps (and reports) the ones with clients', async (t) => {
  let state = base();
  const tried: string[] = [];
  const attachments = new DrainAttachments({ nodeId: 'a' }, {
    state: () => state,
    detachIfIdle: async (name) => {
      tried.push(name);
      if (name === 'busy') throw new PlinthError('VOLUME_ATTACHED', 'busy has 1 connected client(s)');
      state = apply(state, { type: 'volume.detach', name });
    },
    logger,
  });
  await attachments.tick();
  t.same(tried, [], 'nothing happens while the node is not draining');
  state = apply(state, { type: 'node.drain', nodeId: 'a', draining: true, at: AT });
  await attachments.tick();
  t.same(tried.sort(), ['busy', 'idle']);
  t.equal(state.volumes['idle']?.attachedTo, null, 'idle detached');
  t.equal(state.volumes['busy']?.attachedTo, 'a', 'busy stays');
  t.same(attachments.heldByClients(), ['busy']);
  state = apply(state, { type: 'volume.attach', name: 'busy', nodeId: 'b', force: true });
  await attachments.tick();
  t.same(attachments.heldByClients(), [], 'moved elsewhere by the operator: no longer held');
  await attachments.close();
});

t.test('the leader reconciler commits planned moves on the leader only, and survives refusals', async (t) => {
  let leader = false;
  const proposed: Command[] = [];
  const reconciler = new LeaderReconciler<ReplicaMove>({ name: 'test' }, {
    state: base,
    isLeader: () => leader,
    plan: () => [
      { kind: 'add-replica', volume: 'idle', nodeId: 'b', reason: 'drain' },
      { kind: 'remove-replica', volume: 'busy', nodeId: 'a', reason: 'drain' },
    ],
    act: proposeReplicaMove({
      propose: async (command) => {
        proposed.push(command);
        if (command.type === 'replica.add') throw new PlinthError('INVALID_ARGUMENT', 'stale');
      },
      nowIso: () => AT,
    }),
    logger,
  });
  await reconciler.tick();
  t.same(proposed, [], 'a follower proposes nothing');
  leader = true;
  await reconciler.tick();
  t.same(proposed, [
    { type: 'replica.add', name: 'idle', nodeId: 'b', at: AT },
    { type: 'replica.remove', name: 'busy', nodeId: 'a' },
  ], 'a refused move does not stop the pass');
  await reconciler.close();
});
