import type { ClusterState } from '../state/cluster-state.js';
import type { SchedulerNode } from './placement-types.js';

/**
 * The scheduler's view of the committed nodes (issue 4 "Scheduler" and
 * "Drain"), shared by every caller of placeReplicas so they agree on who may
 * take a new replica: up, and not draining. A draining node still serves the
 * replicas it holds until they have moved; it just receives no new ones.
 */
export function schedulerNodesOf(state: ClusterState): SchedulerNode[] {
  return Object.values(state.nodes).map((node) => ({
    id: node.id,
    labels: node.labels,
    freeBytes: node.freeBytes,
    capacityBytes: node.capacityBytes,
    up: node.state === 'up',
  }));
}

/** Node ids that must not receive new replicas: the draining ones, sorted. */
export function drainingNodeIds(state: ClusterState): string[] {
  return Object.values(state.nodes)
    .filter((node) => node.drainingSince !== undefined)
    .map((node) => node.id)
    .sort();
}
