import type { Logger } from 'pino';
import { isPlinthError, toError } from '../../common/plinth-error.js';
import { PeriodicPass, type PeriodicTimers } from '../lifecycle/periodic-pass.js';
import { planRetention, type RetentionAction } from '../snapshots/retention-plan.js';
import type { ClusterState } from '../state/cluster-state.js';

/**
 * The leader runs snapshot retention schedules (issue 8 "Retention"): every
 * pass plans from the committed state and the injected clock
 * (retention-plan.ts), then takes and deletes snapshots through the same
 * control-plane methods `plinth snapshot create/rm` use (the owner pauses
 * writes, the holders take it, snapshot.create commits). Leader only, so
 * two nodes never take the same auto snapshot; a new leader carries on from
 * the committed snapshots. A failed action is logged and planned again on
 * the next pass.
 */
export interface SnapshotRetentionOptions {
  /** How often to look; the schedules' own periods are at least a minute. Default 10 s. */
  readonly intervalMs?: number;
  /** At most this many actions per pass, so one pass never stalls behind many volumes. Default 16. */
  readonly maxActionsPerPass?: number;
}

export interface SnapshotRetentionModules extends PeriodicTimers {
  readonly state: () => ClusterState;
  readonly isLeader: () => boolean;
  readonly nowMs: () => number;
  readonly createSnapshot: (volume: string, snapshotName: string) => Promise<unknown>;
  readonly deleteSnapshot: (volume: string, snapshotName: string) => Promise<unknown>;
  readonly logger: Logger;
}

export class SnapshotRetentionReconciler {
  readonly #options: SnapshotRetentionOptions;
  readonly #modules: SnapshotRetentionModules;
  readonly #logger: Logger;
  readonly #loop: PeriodicPass;

  constructor(options: SnapshotRetentionOptions, modules: SnapshotRetentionModules) {
    this.#options = options;
    this.#modules = modules;
    this.#logger = modules.logger.child({ component: 'snapshot-retention' });
    this.#loop = new PeriodicPass(options.intervalMs ?? 10_000, () => this.#pass(), { ...modules, logger: this.#logger });
  }

  start(): void {
    this.#loop.start();
  }

  /** One pass now (passes never overlap); resolves when its actions finished or failed. */
  tick(): Promise<void> {
    return this.#loop.run();
  }

  close(): Promise<void> {
    return this.#loop.close();
  }

  async #pass(): Promise<void> {
    if (!this.#modules.isLeader()) return;
    const actions = planRetention(this.#modules.state(), this.#modules.nowMs()).slice(0, this.#options.maxActionsPerPass ?? 16);
    for (const action of actions) {
      if (!this.#modules.isLeader()) return;
      await this.#run(action);
    }
  }

  async #run(action: RetentionAction): Promise<void> {
    try {
      if (action.kind === 'create') await this.#modules.createSnapshot(action.volume, action.snapshotName);
      else await this.#modules.deleteSnapshot(action.volume, action.snapshotName);
      this.#logger.info({ ...action }, action.kind === 'create' ? 'scheduled snapshot taken' : 'expired auto snapshot deleted');
    } catch (error) {
      // A volume busy or deleted meanwhile, a lost leadership: the next pass plans again from the state.
      this.#logger[isPlinthError(error) ? 'warn' : 'error']({ err: toError(error), ...action }, 'retention action failed; planning again next pass');
    }
  }
}
