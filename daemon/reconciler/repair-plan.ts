import { PlinthError } from '../../common/plinth-error.js';
import { placeReplicas } from '../scheduler/place-replicas.js';
import { drainingNodeIds, schedulerNodesOf } from '../scheduler/scheduler-nodes.js';
import type { ClusterState, VolumeRecord } from '../state/cluster-state.js';
import { DEFAULT_MAX_MOVING_VOLUMES, type ReplicaMove } from './replica-moves.js';

/**
 * The pure half of re-replication: a volume that holds fewer replicas than
 * its count (a member was removed with `node rm`, taking its replicas with
 * it) gets a new one, placed by the scheduler's rules, which the owner's
 * rebuild fills by a full copy. Only for attached volumes (the owner runs
 * the copy), with at least one replica in sync to copy from, one new
 * replica per volume at a time and a bounded number of volumes at once.
 * Replicas lost to a node that is still a member are the owner's
 * replacement's business (grace period, replica-replacement.ts).
 */

export interface RepairPlanOptions {
  readonly maxMovingVolumes?: number;
}

export function planRepair(state: ClusterState, options: RepairPlanOptions = {}): ReplicaMove[] {
  const volumes = Object.values(state.volumes)
    .filter((volume) => volume.attachedTo !== null && volume.replicas.length < volume.replicaCount)
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const limit = options.maxMovingVolumes ?? DEFAULT_MAX_MOVING_VOLUMES;
  let building = volumes.filter((volume) => volume.replicas.some((replica) => replica.state === 'rebuilding')).length;
  const moves: ReplicaMove[] = [];
  for (const volume of volumes) {
    if (building >= limit) break;
    const nodeId = repairNode(state, volume);
    if (nodeId === undefined) continue;
    moves.push({ kind: 'add-replica', volume: volume.name, nodeId, reason: 'repair' });
    building += 1;
  }
  return moves;
}

function repairNode(state: ClusterState, volume: VolumeRecord): string | undefined {
  if (!volume.replicas.some((replica) => replica.state === 'in-sync')) return undefined;
  if (volume.replicas.some((replica) => replica.state === 'rebuilding')) return undefined;
  return nodeForOneMoreReplica(state, volume);
}

/**
 * A node for one more replica of `volume` by the scheduler's rules: up, not
 * draining, holding none of it yet; undefined when none qualifies. Shared
 * with the owner's replacement of a lost replica (replica-replacement.ts).
 */
export function nodeForOneMoreReplica(state: ClusterState, volume: VolumeRecord): string | undefined {
  const holders = volume.replicas.map((replica) => replica.nodeId);
  const placed = placeReplicas({
    nodes: schedulerNodesOf(state),
    replicaCount: 1,
    // Thin provisioning reserves nothing (as volume.create and replacement do).
    sizeBytes: 0,
    exclude: [...holders, ...drainingNodeIds(state)],
    existingNodeIds: holders,
  });
  return placed instanceof PlinthError ? undefined : placed[0];
}
