import { isPlinthError, PlinthError } from '../../common/plinth-error.js';
import { DEFAULT_GRACE_MS, findNode, findVolume, findVolumeById, nodeCount, type ClusterState, type NodeRecord, type VolumeRecord } from './cluster-state.js';
import type {
  ClusterInitCommand,
  Command,
  VolumeAttachCommand,
  VolumeCreateCommand,
  VolumeDeleteCommand,
  VolumeDetachCommand,
  VolumeResizeCommand,
} from './commands.js';
import { assertCurrentReplicaAvailable, stampCurrentReplicas } from './data-generations.js';
import { joinNode, removeNode, reportCapacity, setNodeDraining, setNodeLiveness, type NodeApplied } from './node-commands.js';
import { addReplica, changeReplicaState, removeReplica, type VolumeApplied } from './replica-commands.js';
import { setScsiReservations } from './scsi-reservation-commands.js';
import { setVolumeChap } from './volume-chap-commands.js';
import { addSnapshotHolder, cloneVolume, createSnapshot, deleteSnapshot, dropSnapshotHolder, dropSnapshotHoldersEverywhere, revertVolume } from './snapshot-commands.js';
import { abortReceive, assertReceiveAttach, assertReceiveCreate, finishReceive, recordReceiveProgress, resumeReceiveOn, startReceive, type VolumeReceiveStartCommand } from './receive-commands.js';
import { setSnapshotSchedule } from './snapshot-schedule-commands.js';
import { assertTimestamp, requireNode, requireVolume, withVolume } from './state-assertions.js';
import {
  assertReplicaCount,
  assertVolumeName,
  assertVolumeSize,
  defaultReplicaCount,
  MAX_GRACE_MS,
  MAX_VOLUMES,
} from './volume-rules.js';

export type CommandResult =
  | { readonly type: 'cluster'; readonly clusterId: string }
  /** For node.remove: the node as it was just before removal. */
  | { readonly type: 'node'; readonly node: NodeRecord }
  /** For volume.delete: the volume as it was just before deletion. */
  | { readonly type: 'volume'; readonly volume: VolumeRecord };

export interface Applied {
  readonly state: ClusterState;
  readonly result: CommandResult;
}

/**
 * The cluster state machine: a pure function of (state, command). The same
 * command applied to the same state gives the same answer on every node.
 * A refusal is returned, not thrown: in Raft a refused entry is still
 * committed, and every node must agree it was refused.
 */
export function applyCommand(state: ClusterState, command: Command): Applied | PlinthError {
  try {
    return applyOrThrow(state, command);
  } catch (err) {
    if (isPlinthError(err)) return err;
    throw err;
  }
}

function applyOrThrow(state: ClusterState, command: Command): Applied {
  switch (command.type) {
    case 'cluster.init':
      return initCluster(state, command);
    case 'node.join':
      return nodeResult(joinNode(state, command));
    case 'node.remove': {
      const removed = removeNode(state, command);
      // Issue 8: the removed node's replicas went with it, and so did its snapshot copies.
      return nodeResult({ ...removed, state: dropSnapshotHoldersEverywhere(removed.state, command.nodeId) });
    }
    case 'node.down':
    case 'node.up':
      return nodeResult(setNodeLiveness(state, command));
    case 'node.capacity':
      return nodeResult(reportCapacity(state, command));
    case 'node.drain':
      return nodeResult(setNodeDraining(state, command));
    case 'volume.create':
      return createVolume(state, command);
    case 'volume.resize':
      return resizeVolume(state, command);
    case 'volume.delete':
      return deleteVolume(state, command);
    case 'volume.attach':
      return attachVolume(state, command);
    case 'volume.detach':
      return detachVolume(state, command);
    case 'replica.fault':
    case 'replica.rebuilding':
    case 'replica.in-sync':
      return volumeResult(changeReplicaState(state, command));
    case 'replica.add':
      return volumeResult(addReplica(state, command));
    case 'replica.remove': {
      // Issue 8: the removed replica's pool copy, snapshots included, is freed on that node.
      const removed = removeReplica(state, command);
      return volumeResult(asVolumeApplied(removed.state, dropSnapshotHolder(removed.volume, command.nodeId)));
    }
    case 'volume.scsi-reservations':
      return volumeResult(setScsiReservations(state, command));
    case 'volume.chap':
      return volumeResult(setVolumeChap(state, command));
    case 'snapshot.create':
      return volumeResult(createSnapshot(state, command));
    case 'snapshot.delete':
      return volumeResult(deleteSnapshot(state, command));
    case 'volume.clone':
      return volumeResult(cloneVolume(state, command));
    case 'volume.revert':
      return volumeResult(revertVolume(state, command));
    case 'snapshot.holder-add':
      return volumeResult(addSnapshotHolder(state, command));
    case 'volume.snapshot-schedule':
      return volumeResult(setSnapshotSchedule(state, command));
    case 'volume.receive-start':
      return volumeResult(startReceive(createForReceive(state, command), command));
    case 'volume.receive-progress':
      return volumeResult(recordReceiveProgress(state, command));
    case 'volume.receive-resume':
      return volumeResult(resumeReceiveOn(state, command));
    case 'volume.receive-finish':
      return volumeResult(finishReceive(state, command));
    case 'volume.receive-abort':
      return volumeResult(abortReceive(state, command));
  }
}

function nodeResult(applied: NodeApplied): Applied {
  return { state: applied.state, result: { type: 'node', node: applied.node } };
}

function volumeResult(applied: VolumeApplied): Applied {
  return { state: applied.state, result: { type: 'volume', volume: applied.volume } };
}

function initCluster(state: ClusterState, command: ClusterInitCommand): Applied {
  if (state.clusterId !== null) {
    throw new PlinthError('INVALID_ARGUMENT', `the cluster is already initialised as ${state.clusterId}`, { clusterId: state.clusterId });
  }
  if (command.clusterId.length === 0) throw new PlinthError('INVALID_ARGUMENT', 'cluster id must not be empty');
  return { state: { ...state, clusterId: command.clusterId }, result: { type: 'cluster', clusterId: command.clusterId } };
}

function createVolume(state: ClusterState, command: VolumeCreateCommand): Applied {
  assertVolumeName(command.name);
  assertVolumeSize(command.sizeBytes);
  const nodes = nodeCount(state);
  const replicaCount = command.replicaCount ?? command.placement?.length ?? defaultReplicaCount(nodes);
  assertReplicaCount(replicaCount, nodes);
  if (findVolume(state, command.name) !== undefined) {
    throw new PlinthError('VOLUME_EXISTS', `volume ${command.name} already exists`, { name: command.name });
  }
  if (command.id.length === 0 || findVolumeById(state, command.id) !== undefined) {
    throw new PlinthError('INVALID_ARGUMENT', `volume id ${JSON.stringify(command.id)} is empty or already in use`, { id: command.id });
  }
  assertTimestamp(command.createdAt, 'createdAt');
  const graceMs = command.graceMs ?? DEFAULT_GRACE_MS;
  if (!Number.isSafeInteger(graceMs) || graceMs < 0 || graceMs > MAX_GRACE_MS) {
    throw new PlinthError('INVALID_ARGUMENT', `graceMs must be 0 to ${MAX_GRACE_MS}, got ${graceMs}`, { graceMs });
  }
  if (Object.keys(state.volumes).length >= MAX_VOLUMES) {
    throw new PlinthError('NO_SPACE', `the cluster already holds the maximum of ${MAX_VOLUMES} volumes`);
  }
  const placement = command.placement ?? Object.keys(state.nodes).sort().slice(0, replicaCount);
  assertPlacement(state, command.name, placement, replicaCount);
  const volume: VolumeRecord = {
    id: command.id,
    name: command.name,
    sizeBytes: command.sizeBytes,
    replicaCount,
    createdAt: command.createdAt,
    attachedTo: null,
    generation: 0,
    // A new volume reads as zeroes everywhere: every replica starts in sync.
    replicas: placement.map((nodeId) => ({ nodeId, state: 'in-sync' as const, since: command.createdAt })),
    graceMs,
  };
  return { state: withVolume(state, volume), result: { type: 'volume', volume } };
}

/** The proposer's placement must name replicaCount distinct members. */
function assertPlacement(state: ClusterState, name: string, placement: readonly string[], replicaCount: number): void {
  if (placement.length !== replicaCount || new Set(placement).size !== placement.length) {
    throw new PlinthError('INVALID_ARGUMENT', `volume ${name}: placement must name ${replicaCount} distinct nodes, got [${placement.join(', ')}]`, {
      name,
      placement,
    });
  }
  for (const nodeId of placement) requireNode(state, nodeId);
}

function resizeVolume(state: ClusterState, command: VolumeResizeCommand): Applied {
  const volume = requireVolume(state, command.name);
  assertVolumeSize(command.sizeBytes);
  if (command.sizeBytes < volume.sizeBytes) {
    throw new PlinthError(
      'INVALID_SIZE',
      `volume ${volume.name} can only grow: ${command.sizeBytes} bytes is smaller than its ${volume.sizeBytes} bytes`,
      { name: volume.name, sizeBytes: volume.sizeBytes, requestedBytes: command.sizeBytes },
    );
  }
  return volumeResult(asVolumeApplied(state, { ...volume, sizeBytes: command.sizeBytes }));
}

function deleteVolume(state: ClusterState, command: VolumeDeleteCommand): Applied {
  const volume = requireVolume(state, command.name);
  if (volume.attachedTo !== null) {
    throw new PlinthError(
      'VOLUME_ATTACHED',
      `volume ${volume.name} is attached to node ${volume.attachedTo}; detach it first`,
      { name: volume.name, attachedTo: volume.attachedTo },
    );
  }
  const volumes = Object.fromEntries(Object.entries(state.volumes).filter(([name]) => name !== volume.name));
  return { state: { ...state, volumes }, result: { type: 'volume', volume } };
}

/**
 * Invariant 3: every change of owner commits a higher generation. Taking a
 * volume from another owner needs force, unless that owner is down (failover)
 * or no longer a member. Issue 7: refused with NO_CURRENT_REPLICA unless a
 * replica holding the latest data generation can serve (data-generations.ts).
 */
function attachVolume(state: ClusterState, command: VolumeAttachCommand): Applied {
  const volume = requireVolume(state, command.name);
  requireNode(state, command.nodeId);
  // Issue 8: a volume being received is attached by its receiving node only (receive-commands.ts).
  assertReceiveAttach(volume, command.nodeId);
  if (command.expectedGeneration !== undefined && command.expectedGeneration !== volume.generation) {
    throw new PlinthError(
      'FENCED',
      `volume ${volume.name} is at generation ${volume.generation}, not the expected ${command.expectedGeneration}`,
      { name: volume.name, generation: volume.generation, expectedGeneration: command.expectedGeneration },
    );
  }
  const force = command.force === true;
  if (volume.attachedTo === command.nodeId && !force) return { state, result: { type: 'volume', volume } };
  const owner = volume.attachedTo === null ? undefined : findNode(state, volume.attachedTo);
  if (owner !== undefined && owner.id !== command.nodeId && owner.state === 'up' && !force) {
    throw new PlinthError(
      'VOLUME_ATTACHED',
      `volume ${volume.name} is attached to node ${owner.id}; detach it first or force the attach`,
      { name: volume.name, attachedTo: owner.id },
    );
  }
  // Issue 7: a new generation only where current data can be served; it stamps the current replicas.
  assertCurrentReplicaAvailable(state, volume, command.nodeId);
  const generation = volume.generation + 1;
  return volumeResult(asVolumeApplied(state, { ...volume, attachedTo: command.nodeId, generation, replicas: stampCurrentReplicas(volume.replicas, generation) }));
}

function detachVolume(state: ClusterState, command: VolumeDetachCommand): Applied {
  const volume = requireVolume(state, command.name);
  if (volume.attachedTo === null) return { state, result: { type: 'volume', volume } };
  return volumeResult(asVolumeApplied(state, { ...volume, attachedTo: null }));
}

/** A full receive creates its volume in the same entry (receive-commands.ts): never visible before it is marked receiving. */
function createForReceive(state: ClusterState, command: VolumeReceiveStartCommand): ClusterState {
  if (command.create === undefined) return state;
  assertReceiveCreate(command.create);
  const { id, sizeBytes, replicaCount, placement } = command.create;
  const create: VolumeCreateCommand = {
    type: 'volume.create', id, name: command.name, sizeBytes, createdAt: command.at,
    ...(replicaCount === undefined ? {} : { replicaCount }), ...(placement === undefined ? {} : { placement }),
  };
  return createVolume(state, create).state;
}

function asVolumeApplied(state: ClusterState, volume: VolumeRecord): VolumeApplied {
  return { state: withVolume(state, volume), volume };
}
