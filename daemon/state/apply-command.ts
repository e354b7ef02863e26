import { isPlinthError, PlinthError } from '../../common/plinth-error.js';
import { isValidNodeId } from '../config/setting-parsers.js';
import { findNode, findVolume, nodeCount, type ClusterState, type NodeRecord, type VolumeRecord } from './cluster-state.js';
import type {
  ClusterInitCommand,
  Command,
  NodeRegisterCommand,
  VolumeAttachCommand,
  VolumeCreateCommand,
  VolumeDeleteCommand,
  VolumeDetachCommand,
  VolumeResizeCommand,
} from './commands.js';
import {
  assertReplicaCount,
  assertVolumeName,
  assertVolumeSize,
  defaultReplicaCount,
  MAX_NODES,
  MAX_VOLUMES,
} from './volume-rules.js';

export type CommandResult =
  | { readonly type: 'cluster'; readonly clusterId: string }
  | { readonly type: 'node'; readonly node: NodeRecord }
  /** For volume.delete: the volume as it was just before deletion. */
  | { readonly type: 'volume'; readonly volume: VolumeRecord };

export interface Applied {
  readonly state: ClusterState;
  readonly result: CommandResult;
}

/**
 * The cluster state machine: a pure function of (state, command). The same
 * command applied to the same state gives the same answer on every node, so
 * the Raft log of the cluster issue can replace the local log unchanged.
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
    case 'node.register':
      return registerNode(state, command);
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
  }
}

function initCluster(state: ClusterState, command: ClusterInitCommand): Applied {
  if (state.clusterId !== null) {
    throw new PlinthError('INVALID_ARGUMENT', `the cluster is already initialised as ${state.clusterId}`, { clusterId: state.clusterId });
  }
  if (command.clusterId.length === 0) throw new PlinthError('INVALID_ARGUMENT', 'cluster id must not be empty');
  return { state: { ...state, clusterId: command.clusterId }, result: { type: 'cluster', clusterId: command.clusterId } };
}

function registerNode(state: ClusterState, command: NodeRegisterCommand): Applied {
  if (!isValidNodeId(command.id)) {
    throw new PlinthError('INVALID_ARGUMENT', `invalid node id ${JSON.stringify(command.id)}`, { nodeId: command.id });
  }
  const { api, peer, nbd, iscsi } = command.addresses;
  for (const [role, address] of Object.entries({ api, peer, nbd, iscsi })) {
    if (typeof address !== 'string' || address.length === 0) {
      throw new PlinthError('INVALID_ARGUMENT', `node ${command.id}: the ${role} address must be a non-empty string`, { nodeId: command.id });
    }
  }
  if (findNode(state, command.id) === undefined && nodeCount(state) >= MAX_NODES) {
    throw new PlinthError('INVALID_ARGUMENT', `the cluster already has the maximum of ${MAX_NODES} nodes`, { nodeId: command.id });
  }
  const node: NodeRecord = { id: command.id, addresses: { api, peer, nbd, iscsi } };
  return { state: { ...state, nodes: { ...state.nodes, [node.id]: node } }, result: { type: 'node', node } };
}

function createVolume(state: ClusterState, command: VolumeCreateCommand): Applied {
  assertVolumeName(command.name);
  assertVolumeSize(command.sizeBytes);
  const nodes = nodeCount(state);
  const replicaCount = command.replicaCount ?? defaultReplicaCount(nodes);
  assertReplicaCount(replicaCount, nodes);
  if (findVolume(state, command.name) !== undefined) {
    throw new PlinthError('VOLUME_EXISTS', `volume ${command.name} already exists`, { name: command.name });
  }
  if (command.id.length === 0 || Object.values(state.volumes).some((volume) => volume.id === command.id)) {
    throw new PlinthError('INVALID_ARGUMENT', `volume id ${JSON.stringify(command.id)} is empty or already in use`, { id: command.id });
  }
  if (Number.isNaN(Date.parse(command.createdAt))) {
    throw new PlinthError('INVALID_ARGUMENT', `createdAt ${JSON.stringify(command.createdAt)} is not a timestamp`);
  }
  if (Object.keys(state.volumes).length >= MAX_VOLUMES) {
    throw new PlinthError('NO_SPACE', `the cluster already holds the maximum of ${MAX_VOLUMES} volumes`);
  }
  const volume: VolumeRecord = {
    id: command.id,
    name: command.name,
    sizeBytes: command.sizeBytes,
    replicaCount,
    createdAt: command.createdAt,
    attachedTo: null,
    generation: 0,
    replicaNodeIds: placeReplicas(state, replicaCount),
  };
  return withVolume(state, volume);
}

/**
 * Deterministic placeholder placement: the first node ids in sorted order.
 * The scheduler issue replaces this with placement decided by the proposer
 * (capacity, anti-affinity) and carried in the command.
 */
function placeReplicas(state: ClusterState, replicaCount: number): string[] {
  return Object.keys(state.nodes).sort().slice(0, replicaCount);
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
  return withVolume(state, { ...volume, sizeBytes: command.sizeBytes });
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

function attachVolume(state: ClusterState, command: VolumeAttachCommand): Applied {
  const volume = requireVolume(state, command.name);
  if (findNode(state, command.nodeId) === undefined) {
    throw new PlinthError('INVALID_ARGUMENT', `node ${JSON.stringify(command.nodeId)} is not a member of the cluster`, {
      nodeId: command.nodeId,
    });
  }
  if (volume.attachedTo === command.nodeId) return { state, result: { type: 'volume', volume } };
  if (volume.attachedTo !== null && command.force !== true) {
    throw new PlinthError(
      'VOLUME_ATTACHED',
      `volume ${volume.name} is attached to node ${volume.attachedTo}; detach it first or force the attach`,
      { name: volume.name, attachedTo: volume.attachedTo },
    );
  }
  // ARCHITECTURE invariant 3: every change of owner commits a higher generation.
  return withVolume(state, { ...volume, attachedTo: command.nodeId, generation: volume.generation + 1 });
}

function detachVolume(state: ClusterState, command: VolumeDetachCommand): Applied {
  const volume = requireVolume(state, command.name);
  if (volume.attachedTo === null) return { state, result: { type: 'volume', volume } };
  return withVolume(state, { ...volume, attachedTo: null });
}

function requireVolume(state: ClusterState, name: string): VolumeRecord {
  const volume = findVolume(state, name);
  if (volume === undefined) throw new PlinthError('VOLUME_NOT_FOUND', `volume ${name} does not exist`, { name });
  return volume;
}

function withVolume(state: ClusterState, volume: VolumeRecord): Applied {
  return { state: { ...state, volumes: { ...state.volumes, [volume.name]: volume } }, result: { type: 'volume', volume } };
}
