import { PlinthError } from '../../common/plinth-error.js';
import type { CreateVolumeRequest } from '../control-plane.js';
import { placeReplicas } from '../scheduler/place-replicas.js';
import { drainingNodeIds, schedulerNodesOf } from '../scheduler/scheduler-nodes.js';
import type { ClusterState } from '../state/cluster-state.js';
import { defaultReplicaCount } from '../state/volume-rules.js';

/**
 * The proposer's side of volume.create (issue 4 "Scheduler"): N distinct up
 * nodes, spread over zones and racks, weighted by committed free bytes, the
 * creating node first when it qualifies. Thin provisioning reserves nothing,
 * so placement asks for 0 free bytes (overcommit is allowed; writes fail
 * NO_SPACE when a pool fills). Draining nodes take no new replicas (issue 4
 * "Drain"), nor count towards the default replica count. Throws the
 * scheduler's refusal.
 */
export function choosePlacement(state: ClusterState, request: CreateVolumeRequest, localNodeId: string): string[] {
  const nodes = schedulerNodesOf(state);
  const draining = drainingNodeIds(state);
  const eligible = nodes.filter((node) => node.up && !draining.includes(node.id)).length;
  const replicaCount = request.replicaCount ?? defaultReplicaCount(eligible);
  const placed = placeReplicas({ nodes, replicaCount, sizeBytes: 0, preferNodeId: localNodeId, exclude: draining });
  if (placed instanceof PlinthError) throw placed;
  return placed;
}
