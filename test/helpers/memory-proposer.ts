import { PlinthError } from '../../common/plinth-error.js';
import type { CommandProposer } from '../../daemon/control/command-proposer.js';
import { applyCommand, type CommandResult } from '../../daemon/state/apply-command.js';
import { type ClusterState, emptyClusterState } from '../../daemon/state/cluster-state.js';
import type { Command } from '../../daemon/state/commands.js';

/** The cluster state machine without Raft: every command applies at once, refusals throw as from the leader. */
export class MemoryProposer implements CommandProposer {
  state: ClusterState = emptyClusterState();

  async propose(command: Command): Promise<CommandResult> {
    const applied = applyCommand(this.state, command);
    if (applied instanceof PlinthError) throw applied;
    this.state = applied.state;
    return applied.result;
  }
}
