import { PlinthError } from '../../common/plinth-error.js';
import type { CreateVolumeRequest } from '../control-plane.js';
import { placeReplicas } from '../scheduler/place-replicas.js';
import type { SchedulerNode } from '../scheduler/placement-types.js';
import type { ClusterState } from '../state/cluster-state.js';
import { defaultReplicaCount } from '../state/volume-rules.js';

/**
 * The proposer's side of volume.create (issue 4 "Scheduler"): N distinct up
 * nodes, spread over zones and racks, weighted by committed free bytes, the
 * creating node first when it qualifies. Thin provisioning reserves nothing,
 * so placement asks for 0 free bytes (overcommit is allowed; writes fail
 * NO_SPACE when a pool fills). Throws the scheduler's refusal.
 */
export function choosePlacement(state: ClusterState, request: CreateVolumeRequest, localNodeId: string): string[] {
  const nodes: SchedulerNode[] = Object.values(state.nodes).map((node) => ({
    id: node.id,
    labels: node.labels,
    freeBytes: node.freeBytes,
    capacityBytes: node.capacityBytes,
    up: node.state === 'up',
  }));
  const replicaCount = request.replicaCount ?? defaultReplicaCount(nodes.filter((node) => node.up).length);
  const placed = placeReplicas({ nodes, replicaCount, sizeBytes: 0, preferNodeId: localNodeId });
  if (placed instanceof PlinthError) throw placed;
  return placed;
}
