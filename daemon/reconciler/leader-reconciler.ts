import type { Logger } from 'pino';
import { PeriodicPass } from '../lifecycle/periodic-pass.js';
import { isPlinthError, toError } from '../../common/plinth-error.js';
import type { ClusterState } from '../state/cluster-state.js';
import type { Command } from '../state/commands.js';
import type { ReplicaMove } from './replica-moves.js';

/**
 * The thin shell around a pure move plan (drain-plan.ts, locality-plan.ts):
 * every `intervalMs`, on the Raft leader only (one planner for the cluster,
 * so two nodes never add two replicas for the same move), plan from the
 * committed state and commit each move. The state machine stays the
 * authority: a move made stale by a concurrent change is refused at apply
 * (replica.add beyond count + 1, replica.remove of the last in-sync copy)
 * and simply re-planned on the next pass. The owner's session follows the
 * committed replica set (session-replica-sync.ts) and rebuilds new replicas.
 */

export interface LeaderReconcilerOptions {
  /** For logs: "drain" or "locality". */
  readonly name: string;
  readonly intervalMs?: number;
}

export interface LeaderReconcilerModules {
  readonly state: () => ClusterState;
  readonly isLeader: () => boolean;
  readonly propose: (command: Command) => Promise<unknown>;
  readonly plan: (state: ClusterState) => readonly ReplicaMove[];
  readonly logger: Logger;
  readonly nowIso?: () => string;
  readonly setInterval?: (callback: () => void, ms: number) => NodeJS.Timeout;
  readonly clearInterval?: (timer: NodeJS.Timeout) => void;
}

export class LeaderReconciler {
  readonly #options: LeaderReconcilerOptions;
  readonly #modules: LeaderReconcilerModules;
  readonly #logger: Logger;
  readonly #loop: PeriodicPass;

  constructor(options: LeaderReconcilerOptions, modules: LeaderReconcilerModules) {
    this.#options = options;
    this.#modules = modules;
    this.#logger = modules.logger.child({ component: `${options.name}-reconciler` });
    this.#loop = new PeriodicPass(options.intervalMs ?? 1000, () => this.#pass(), modules);
  }

  start(): void {
    this.#loop.start();
  }

  /** One pass (passes never overlap); resolves once its moves are committed or refused. */
  tick(): Promise<void> {
    return this.#loop.run();
  }

  close(): Promise<void> {
    return this.#loop.close();
  }

  async #pass(): Promise<void> {
    if (!this.#modules.isLeader()) return;
    const moves = this.#modules.plan(this.#modules.state());
    for (const move of moves) {
      if (!this.#modules.isLeader()) return;
      try {
        await this.#modules.propose(this.#command(move));
        this.#logger.info({ ...move }, move.kind === 'add-replica' ? 'replica added; the owner rebuilds it' : 'replica removed');
      } catch (error) {
        // Refused at apply (the state moved) or lost leadership: the next pass plans again.
        const level = isPlinthError(error) ? 'warn' : 'error';
        this.#logger[level]({ err: toError(error), ...move }, 'move not committed; planning again next pass');
      }
    }
  }

  #command(move: ReplicaMove): Command {
    if (move.kind === 'remove-replica') return { type: 'replica.remove', name: move.volume, nodeId: move.nodeId };
    return { type: 'replica.add', name: move.volume, nodeId: move.nodeId, at: (this.#modules.nowIso ?? (() => new Date().toISOString()))() };
  }
}
