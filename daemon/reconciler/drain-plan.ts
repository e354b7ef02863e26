import { PlinthError } from '../../common/plinth-error.js';
import { placeReplicas } from '../scheduler/place-replicas.js';
import { drainingNodeIds, schedulerNodesOf } from '../scheduler/scheduler-nodes.js';
import { isNodeUp, type ClusterState, type ReplicaRecord, type VolumeRecord } from '../state/cluster-state.js';
import { DEFAULT_MAX_MOVING_VOLUMES, type DrainBlocker, type ReplicaMove } from './replica-moves.js';

/**
 * The pure half of `node drain` (issue 4 "Drain": "moves owners and
 * replicas away without ever dropping below the replica count"). Given the
 * committed state, the next commands that move replicas off draining nodes,
 * and what blocks the rest. Per volume, in order:
 *   1. a draining node's replica is removed once the replicas left keep the
 *      replica count in sync (the add came first and has caught up);
 *   2. while a new replica is being rebuilt, wait;
 *   3. otherwise add a replica on a node the scheduler picks (up, not
 *      draining, no replica yet, zone/rack spread, free space; the owner
 *      first, for data locality).
 * Rebuilding runs on the owner (VolumeSession.rebuild), so a detached volume
 * or one whose owner is down cannot move and is reported as blocking.
 * Attachments on a draining node are released by the node itself
 * (drain-attachments.ts); one with connected clients stays and blocks.
 */

export interface DrainPlanOptions {
  /** Volumes gaining a replica at once, across the cluster. */
  readonly maxMovingVolumes?: number;
}

export interface DrainPlan {
  readonly moves: readonly ReplicaMove[];
  readonly blockers: readonly DrainBlocker[];
}

export function planDrain(state: ClusterState, options: DrainPlanOptions = {}): DrainPlan {
  const draining = new Set(drainingNodeIds(state));
  const moves: ReplicaMove[] = [];
  const blockers: DrainBlocker[] = [];
  if (draining.size === 0) return { moves, blockers };
  const volumes = Object.values(state.volumes).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  let moving = volumes.filter((volume) => isMoving(volume, draining)).length;
  const limit = options.maxMovingVolumes ?? DEFAULT_MAX_MOVING_VOLUMES;
  for (const volume of volumes) {
    const leaving = volume.replicas.filter((replica) => draining.has(replica.nodeId));
    const first = leaving[0];
    if (first !== undefined) {
      const step = nextStep(state, volume, leaving, draining, moving < limit);
      if (step.move !== undefined) moves.push(step.move);
      if (step.move?.kind === 'add-replica') moving += 1;
      for (const reason of step.blocked) blockers.push(...leaving.map((replica) => ({ volume: volume.name, nodeId: replica.nodeId, reason })));
    }
    if (volume.attachedTo !== null && draining.has(volume.attachedTo)) {
      blockers.push({
        volume: volume.name,
        nodeId: volume.attachedTo,
        reason:
          `volume ${volume.name} is attached on draining node ${volume.attachedTo}; it is detached there once no client is connected, ` +
          `or re-attach it elsewhere: plinth volume attach ${volume.name} --node OTHER --force`,
      });
    }
  }
  return { moves, blockers };
}

interface Step {
  readonly move?: ReplicaMove;
  readonly blocked: readonly string[];
}

function nextStep(state: ClusterState, volume: VolumeRecord, leaving: readonly ReplicaRecord[], draining: ReadonlySet<string>, mayAdd: boolean): Step {
  const inSync = volume.replicas.filter((replica) => replica.state === 'in-sync');
  // A replica not in sync goes first: removing it costs no redundancy.
  const byCost = [...leaving].sort((a, b) => Number(a.state === 'in-sync') - Number(b.state === 'in-sync'));
  for (const replica of byCost) {
    const inSyncAfter = inSync.filter((other) => other.nodeId !== replica.nodeId).length;
    if (inSyncAfter >= volume.replicaCount && inSyncAfter > 0) {
      return { move: { kind: 'remove-replica', volume: volume.name, nodeId: replica.nodeId, reason: 'drain' }, blocked: [] };
    }
  }
  const owner = volume.attachedTo;
  const catchingUp = volume.replicas.filter((replica) => !draining.has(replica.nodeId) && replica.state !== 'in-sync');
  if (owner === null) {
    return {
      blocked: [
        `volume ${volume.name} is detached: replicas are rebuilt by the node serving the volume, so attach it on a node that is not draining ` +
          `(plinth volume attach ${volume.name} --node OTHER) and the drain moves it`,
      ],
    };
  }
  if (!isNodeUp(state, owner)) return { blocked: [`volume ${volume.name}: its owner ${owner} is down; it moves once it is served again`] };
  // A new replica is being rebuilt (or a faulted one awaits its rebuild): wait for it.
  if (catchingUp.length > 0 || volume.replicas.length > volume.replicaCount) return { blocked: [] };
  if (!mayAdd) return { blocked: [] };
  const holders = volume.replicas.map((replica) => replica.nodeId);
  const staying = holders.filter((nodeId) => !draining.has(nodeId));
  const preferOwner = !draining.has(owner) && !holders.includes(owner) ? { preferNodeId: owner } : {};
  // Thin provisioning reserves nothing (as at volume.create): 0 bytes asked.
  const placed = placeReplicas({
    nodes: schedulerNodesOf(state),
    replicaCount: 1,
    sizeBytes: 0,
    exclude: [...holders, ...draining],
    existingNodeIds: staying,
    ...preferOwner,
  });
  const target = placed instanceof PlinthError ? undefined : placed[0];
  if (target === undefined) {
    const why = placed instanceof PlinthError ? placed.message : 'the scheduler chose nothing';
    return { blocked: [`volume ${volume.name}: no node can take the replica leaving the draining node (${why})`] };
  }
  return { move: { kind: 'add-replica', volume: volume.name, nodeId: target, reason: 'drain' }, blocked: [] };
}

/** A volume with a replica leaving and a new one not yet in sync. */
function isMoving(volume: VolumeRecord, draining: ReadonlySet<string>): boolean {
  const leaving = volume.replicas.some((replica) => draining.has(replica.nodeId));
  return leaving && volume.replicas.some((replica) => !draining.has(replica.nodeId) && replica.state !== 'in-sync');
}

/** What `GET /v1/nodes` shows of one node's drain. */
export interface DrainProgress {
  readonly since: string;
  /** Replicas still on the node. */
  readonly replicasLeft: number;
  /** Volumes still attached to the node. */
  readonly attachedVolumes: readonly string[];
  readonly blocking: readonly { readonly volume: string; readonly reason: string }[];
  /** No replica and no attachment left. */
  readonly done: boolean;
}

/** undefined when the node is not draining. */
export function drainProgress(state: ClusterState, nodeId: string, plan: DrainPlan = planDrain(state)): DrainProgress | undefined {
  const since = Object.hasOwn(state.nodes, nodeId) ? state.nodes[nodeId]?.drainingSince : undefined;
  if (since === undefined) return undefined;
  const volumes = Object.values(state.volumes);
  const replicasLeft = volumes.filter((volume) => volume.replicas.some((replica) => replica.nodeId === nodeId)).length;
  const attachedVolumes = volumes.filter((volume) => volume.attachedTo === nodeId).map((volume) => volume.name).sort();
  const blocking = plan.blockers.filter((blocker) => blocker.nodeId === nodeId).map(({ volume, reason }) => ({ volume, reason }));
  return { since, replicasLeft, attachedVolumes, blocking, done: replicasLeft === 0 && attachedVolumes.length === 0 };
}
