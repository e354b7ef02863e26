import type { Logger } from 'pino';
import type { ClusterState } from '../state/cluster-state.js';
import type { Command } from '../state/commands.js';
import { planDrain, type DrainPlanOptions } from './drain-plan.js';
import { LeaderReconciler, proposeReplicaMove } from './leader-reconciler.js';

/**
 * Leader side of `node drain` (issue 4 "Drain"): commits the moves
 * planDrain() decides, one pass per interval. Add first, remove once the
 * replicas that stay hold the replica count in sync (drain-plan.ts).
 */
export interface DrainReconcilerOptions extends DrainPlanOptions {
  readonly intervalMs?: number;
}

export interface ClusterCommandModules {
  readonly state: () => ClusterState;
  readonly isLeader: () => boolean;
  readonly propose: (command: Command) => Promise<unknown>;
  readonly logger: Logger;
  readonly nowIso?: () => string;
}

export function createDrainReconciler(options: DrainReconcilerOptions, modules: ClusterCommandModules): LeaderReconciler {
  const planOptions = options.maxMovingVolumes === undefined ? {} : { maxMovingVolumes: options.maxMovingVolumes };
  return new LeaderReconciler(
    { name: 'drain', ...(options.intervalMs === undefined ? {} : { intervalMs: options.intervalMs }) },
    { ...modules, plan: (state) => planDrain(state, planOptions).moves, act: proposeReplicaMove(modules) },
  );
}
