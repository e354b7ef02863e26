import type { ClusterCommandModules } from './drain-reconciler.js';
import { LeaderReconciler, proposeReplicaMove } from './leader-reconciler.js';
import { planRepair, type RepairPlanOptions } from './repair-plan.js';

/** Leader side of re-replication: commits the replicas planRepair() adds to under-replicated volumes. */
export interface RepairReconcilerOptions extends RepairPlanOptions {
  readonly intervalMs?: number;
}

export function createRepairReconciler(options: RepairReconcilerOptions, modules: ClusterCommandModules): LeaderReconciler {
  const planOptions = options.maxMovingVolumes === undefined ? {} : { maxMovingVolumes: options.maxMovingVolumes };
  return new LeaderReconciler(
    { name: 'repair', ...(options.intervalMs === undefined ? {} : { intervalMs: options.intervalMs }) },
    { ...modules, plan: (state) => planRepair(state, planOptions), act: proposeReplicaMove(modules) },
  );
}
