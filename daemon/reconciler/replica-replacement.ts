import type { CommandProposer } from '../control/command-proposer.js';
import { findVolume } from '../state/cluster-state.js';
import { nodeForOneMoreReplica } from './repair-plan.js';

/**
 * What the owner's reconciler needs to replace a replica lost for longer than
 * its volume's grace period (issue 4 "Rebuild": "replaced by a new one on
 * another node, built by full copy"): a node for the new replica, and the
 * committed replica.add / replica.remove. A narrow port so the reconciler
 * stays testable and does not depend on the shape of the state records.
 */
export interface ReplicaReplacementPort {
  /** The volume's wanted replica count; undefined when the volume is gone. */
  replicaCount(name: string): number | undefined;
  /** An up node holding no replica of the volume yet (scheduler rules), or undefined when none qualifies. */
  chooseReplacementNode(name: string): string | undefined;
  /** Commit a new replica on nodeId (state rebuilding: it holds no data yet). */
  addReplica(name: string, nodeId: string): Promise<void>;
  /** Commit the removal of the replica on nodeId (refused for the last in-sync one). */
  removeReplica(name: string, nodeId: string): Promise<void>;
  /**
   * The command log behind the port, when there is one: the leader-side drain
   * and locality reconcilers (issue 4 "Drain", data locality) plan from its
   * committed state and propose through it. Absent: they do not run.
   */
  readonly commands?: CommandProposer;
}

export interface ProposerReplacementModules {
  readonly commands: CommandProposer;
  /** Timestamps travel in commands (apply is pure); injected for tests. */
  readonly nowIso?: () => string;
}

/** The port over the command log (Raft-backed in a cluster). */
export function proposerReplacementPort(modules: ProposerReplacementModules): ReplicaReplacementPort {
  const { commands } = modules;
  const nowIso = modules.nowIso ?? (() => new Date().toISOString());
  return {
    commands,
    replicaCount: (name) => findVolume(commands.state, name)?.replicaCount,
    chooseReplacementNode: (name) => {
      const state = commands.state;
      const volume = findVolume(state, name);
      return volume === undefined ? undefined : nodeForOneMoreReplica(state, volume);
    },
    addReplica: async (name, nodeId) => {
      await commands.propose({ type: 'replica.add', name, nodeId, at: nowIso() });
    },
    removeReplica: async (name, nodeId) => {
      await commands.propose({ type: 'replica.remove', name, nodeId });
    },
  };
}
