import { PlinthError } from '../../common/plinth-error.js';
import { retireCandidate } from '../scheduler/retire-candidate.js';
import { schedulerNodesOf } from '../scheduler/scheduler-nodes.js';
import { findNode, findReplica, type ClusterState, type VolumeRecord } from '../state/cluster-state.js';
import { DEFAULT_MAX_MOVING_VOLUMES, type ReplicaMove } from './replica-moves.js';

/**
 * The pure half of data locality (issue 4 "Scheduler": "when a volume
 * attaches on a node that holds no replica, a replica is placed there if
 * possible and, once in sync, the one farthest away retires"). Per attached
 * volume:
 *   1. healthy (every replica in sync, exactly the replica count) and the
 *      owner holds none: add one on the owner, if it is up, not draining and
 *      has reported at least the volume's size free (a full copy may fill it);
 *   2. the owner's replica is in sync and the volume holds one more than its
 *      count, all in sync: retire retireCandidate()'s pick.
 * Never while a replica is on a draining node (the drain plan moves those)
 * nor while anything is out of sync (a rebuild or a replacement is running),
 * so locality never lowers redundancy.
 */

export interface LocalityPlanOptions {
  readonly maxMovingVolumes?: number;
}

export function planLocality(state: ClusterState, options: LocalityPlanOptions = {}): ReplicaMove[] {
  const moves: ReplicaMove[] = [];
  const volumes = Object.values(state.volumes)
    .filter((volume) => volume.attachedTo !== null)
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  let moving = volumes.filter((volume) => isLocalityMove(volume)).length;
  const limit = options.maxMovingVolumes ?? DEFAULT_MAX_MOVING_VOLUMES;
  for (const volume of volumes) {
    const move = nextLocalityMove(state, volume, moving < limit);
    if (move === undefined) continue;
    moves.push(move);
    if (move.kind === 'add-replica') moving += 1;
  }
  return moves;
}

function nextLocalityMove(state: ClusterState, volume: VolumeRecord, mayAdd: boolean): ReplicaMove | undefined {
  const ownerId = volume.attachedTo;
  const owner = ownerId === null ? undefined : findNode(state, ownerId);
  if (owner === undefined || owner.state !== 'up' || owner.drainingSince !== undefined) return undefined;
  if (volume.replicas.some((replica) => findNode(state, replica.nodeId)?.drainingSince !== undefined)) return undefined;
  const allInSync = volume.replicas.every((replica) => replica.state === 'in-sync');
  if (!allInSync) return undefined;
  const local = findReplica(volume, owner.id);
  if (local === undefined) {
    const fits = owner.capacityReportedAt !== null && owner.freeBytes >= volume.sizeBytes;
    if (!mayAdd || !fits || volume.replicas.length !== volume.replicaCount) return undefined;
    return { kind: 'add-replica', volume: volume.name, nodeId: owner.id, reason: 'locality' };
  }
  if (volume.replicas.length <= volume.replicaCount) return undefined;
  const retiring = retireCandidate({
    nodes: schedulerNodesOf(state),
    replicaNodeIds: volume.replicas.map((replica) => replica.nodeId),
    ownerNodeId: owner.id,
  });
  if (retiring instanceof PlinthError) return undefined;
  return { kind: 'remove-replica', volume: volume.name, nodeId: retiring, reason: 'locality' };
}

/** A locality replica being built: the owner's replica is not in sync yet and the volume holds one extra. */
function isLocalityMove(volume: VolumeRecord): boolean {
  const local = volume.attachedTo === null ? undefined : findReplica(volume, volume.attachedTo);
  return local !== undefined && local.state !== 'in-sync' && volume.replicas.length > volume.replicaCount;
}
