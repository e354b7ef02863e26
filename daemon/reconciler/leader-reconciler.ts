import type { Logger } from 'pino';
import { PeriodicPass, type PeriodicTimers } from '../lifecycle/periodic-pass.js';
import { isPlinthError, toError } from '../../common/plinth-error.js';
import type { ClusterState } from '../state/cluster-state.js';
import type { Command } from '../state/commands.js';
import type { ReplicaMove } from './replica-moves.js';

/**
 * The thin shell around a pure plan (drain-plan.ts, locality-plan.ts,
 * repair-plan.ts, retention-plan.ts): every `intervalMs`, on the Raft leader
 * only (one planner for the cluster, so two nodes never act twice on the
 * same plan), plan from the committed state and act on each item in turn.
 * The state machine stays the authority: an action made stale by a
 * concurrent change is refused (replica.add beyond count + 1, a snapshot
 * of a deleted volume) and simply planned again on the next pass.
 */

export interface LeaderReconcilerOptions {
  /** For logs: "drain", "locality", "snapshot-retention". */
  readonly name: string;
  readonly intervalMs?: number;
}

export interface LeaderReconcilerModules<Action extends Readonly<Record<string, unknown>>> extends PeriodicTimers {
  readonly state: () => ClusterState;
  readonly isLeader: () => boolean;
  readonly plan: (state: ClusterState) => readonly Action[];
  /** Carry out one action; resolves with what to log when it succeeded. */
  readonly act: (action: Action) => Promise<string>;
  readonly logger: Logger;
}

export class LeaderReconciler<Action extends Readonly<Record<string, unknown>> = ReplicaMove> {
  readonly #modules: LeaderReconcilerModules<Action>;
  readonly #logger: Logger;
  readonly #loop: PeriodicPass;

  constructor(options: LeaderReconcilerOptions, modules: LeaderReconcilerModules<Action>) {
    this.#modules = modules;
    this.#logger = modules.logger.child({ component: `${options.name}-reconciler` });
    this.#loop = new PeriodicPass(options.intervalMs ?? 1000, () => this.#pass(), modules);
  }

  start(): void {
    this.#loop.start();
  }

  /** One pass (passes never overlap); resolves once its actions succeeded or failed. */
  tick(): Promise<void> {
    return this.#loop.run();
  }

  close(): Promise<void> {
    return this.#loop.close();
  }

  async #pass(): Promise<void> {
    if (!this.#modules.isLeader()) return;
    for (const action of this.#modules.plan(this.#modules.state())) {
      if (!this.#modules.isLeader()) return;
      const fields: Record<string, unknown> = { ...action };
      try {
        this.#logger.info(fields, await this.#modules.act(action));
      } catch (error) {
        // Refused (the state moved) or lost leadership: the next pass plans again.
        const level = isPlinthError(error) ? 'warn' : 'error';
        this.#logger[level]({ ...fields, err: toError(error) }, 'action failed; planning again next pass');
      }
    }
  }
}

/** `act` for replica moves: commit the move as its Raft command. */
export function proposeReplicaMove(modules: {
  readonly propose: (command: Command) => Promise<unknown>;
  readonly nowIso?: () => string;
}): (move: ReplicaMove) => Promise<string> {
  const nowIso = modules.nowIso ?? (() => new Date().toISOString());
  return async (move) => {
    if (move.kind === 'remove-replica') {
      await modules.propose({ type: 'replica.remove', name: move.volume, nodeId: move.nodeId });
      return 'replica removed';
    }
    await modules.propose({ type: 'replica.add', name: move.volume, nodeId: move.nodeId, at: nowIso() });
    return 'replica added; the owner rebuilds it';
  };
}
