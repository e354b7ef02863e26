import { PlinthError } from '../../../../common/plinth-error.js';
import { applyCommand, type Applied } from '../../../../daemon/state/apply-command.js';
import { emptyClusterState, type ClusterState } from '../../../../daemon/state/cluster-state.js';
import type { Command } from '../../../../daemon/state/commands.js';

/** Set-up shared by the cluster-state command tests: apply commands to the pure state machine (daemon/state/apply-command.ts). */

/** One node's advertised addresses; the tests never dial them. */
export const ADDRESSES = { api: '127.0.0.1:9700', peer: '127.0.0.1:9701', nbd: '127.0.0.1:10809', iscsi: '127.0.0.1:3260' };

/** Apply `command`, which must be accepted. */
export function ok(state: ClusterState, command: Command): Applied {
  const outcome = applyCommand(state, command);
  if (outcome instanceof PlinthError) throw outcome;
  return outcome;
}

/** Apply `command`, which must be refused; the refusal. */
export function refused(state: ClusterState, command: Command): PlinthError {
  const outcome = applyCommand(state, command);
  if (!(outcome instanceof PlinthError)) throw new Error(`expected ${command.type} to be refused`);
  return outcome;
}

/** An initialised cluster "c1" with `nodeIds` joined at `joinedAt`. */
export function withNodes(nodeIds: readonly string[], joinedAt: string): ClusterState {
  let state = ok(emptyClusterState(), { type: 'cluster.init', clusterId: 'c1' }).state;
  for (const nodeId of nodeIds) state = ok(state, { type: 'node.join', nodeId, addresses: ADDRESSES, joinedAt }).state;
  return state;
}
