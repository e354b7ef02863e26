import type { Logger } from 'pino';
import type { PeriodicTimers } from '../lifecycle/periodic-pass.js';
import { planRetention, type RetentionAction } from '../snapshots/retention-plan.js';
import type { ClusterState } from '../state/cluster-state.js';
import { LeaderReconciler } from './leader-reconciler.js';

/**
 * The leader runs snapshot retention schedules (issue 8 "Retention"): every
 * pass plans from the committed state and the injected clock
 * (retention-plan.ts), then takes and deletes snapshots through the same
 * control-plane methods `plinth snapshot create/rm` use (the owner pauses
 * writes, the holders take it, snapshot.create commits). Leader only, so
 * two nodes never take the same auto snapshot; a new leader carries on from
 * the committed snapshots. A failed action is logged and planned again on
 * the next pass (the plan-and-act loop is leader-reconciler.ts).
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

export function createSnapshotRetentionReconciler(options: SnapshotRetentionOptions, modules: SnapshotRetentionModules): LeaderReconciler<RetentionAction> {
  const maxActions = options.maxActionsPerPass ?? 16;
  return new LeaderReconciler(
    { name: 'snapshot-retention', intervalMs: options.intervalMs ?? 10_000 },
    {
      ...modules,
      plan: (state) => planRetention(state, modules.nowMs()).slice(0, maxActions),
      act: async (action) => {
        if (action.kind === 'create') {
          await modules.createSnapshot(action.volume, action.snapshotName);
          return 'scheduled snapshot taken';
        }
        await modules.deleteSnapshot(action.volume, action.snapshotName);
        return 'expired auto snapshot deleted';
      },
    },
  );
}
