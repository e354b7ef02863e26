import type { ClusterCommandModules } from './drain-reconciler.js';
import { LeaderReconciler, proposeReplicaMove } from './leader-reconciler.js';
import { planLocality, type LocalityPlanOptions } from './locality-plan.js';

/**
 * Leader side of data locality (issue 4 "Scheduler"): commits the moves
 * planLocality() decides: a replica on the owner of a healthy volume that
 * has none, then, once it is in sync, retireCandidate()'s pick leaves.
 */
export interface LocalityReconcilerOptions extends LocalityPlanOptions {
  readonly intervalMs?: number;
}

export function createLocalityReconciler(options: LocalityReconcilerOptions, modules: ClusterCommandModules): LeaderReconciler {
  const planOptions = options.maxMovingVolumes === undefined ? {} : { maxMovingVolumes: options.maxMovingVolumes };
  return new LeaderReconciler(
    { name: 'locality', ...(options.intervalMs === undefined ? {} : { intervalMs: options.intervalMs }) },
    { ...modules, plan: (state) => planLocality(state, planOptions), act: proposeReplicaMove(modules) },
  );
}
