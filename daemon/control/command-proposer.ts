import { PlinthError } from '../../common/plinth-error.js';
import type { CommandResult } from '../state/apply-command.js';
import type { ClusterState } from '../state/cluster-state.js';
import type { Command } from '../state/commands.js';

/**
 * What the control plane needs of the command log: the committed state and a
 * way to propose. LocalCommandLog implements it today; the Raft-backed log of
 * the cluster issue will implement the same two members.
 */
export interface CommandProposer {
  readonly state: ClusterState;
  /** Resolves once the command is applied and durable; throws its refusal. */
  propose(command: Command): Promise<CommandResult>;
  /**
   * Linearizable read barrier (invariant 6): once resolved, `state` reflects
   * every command committed before the call. Absent: `state` is always current
   * (the single-process LocalCommandLog).
   */
  barrier?(): Promise<void>;
  /** The Raft leader's id, when known; absent for a log with no leader. */
  readonly leaderId?: string | null;
  /** Raft membership: remove a voter (RaftCommandLog); absent when there is no Raft. */
  removeVoter?(nodeId: string): Promise<void>;
}

export function expectVolumeResult(result: CommandResult): Extract<CommandResult, { type: 'volume' }>['volume'] {
  if (result.type !== 'volume') throw new PlinthError('INTERNAL', `expected a volume result, got a ${result.type} result`);
  return result.volume;
}
