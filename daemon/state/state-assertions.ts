import { PlinthError } from '../../common/plinth-error.js';
import { findNode, findVolume, type ClusterState, type NodeRecord, type VolumeRecord } from './cluster-state.js';

/** Lookups and checks shared by the command appliers; each throws a refusal. */

export function requireVolume(state: ClusterState, name: string): VolumeRecord {
  const volume = findVolume(state, name);
  if (volume === undefined) throw new PlinthError('VOLUME_NOT_FOUND', `volume ${name} does not exist`, { name });
  return volume;
}

export function requireNode(state: ClusterState, nodeId: string): NodeRecord {
  const node = findNode(state, nodeId);
  if (node === undefined) {
    throw new PlinthError('NODE_NOT_FOUND', `node ${JSON.stringify(nodeId)} is not a member of the cluster`, { nodeId });
  }
  return node;
}

export function assertTimestamp(value: string, field: string): void {
  if (Number.isNaN(Date.parse(value))) {
    throw new PlinthError('INVALID_ARGUMENT', `${field} ${JSON.stringify(value)} is not a timestamp`, { [field]: value });
  }
}

export function assertByteCount(value: number, field: string): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new PlinthError('INVALID_ARGUMENT', `${field} must be a non-negative whole number, got ${value}`, { [field]: value });
  }
}

export function withVolume(state: ClusterState, volume: VolumeRecord): ClusterState {
  return { ...state, volumes: { ...state.volumes, [volume.name]: volume } };
}

export function withNode(state: ClusterState, node: NodeRecord): ClusterState {
  return { ...state, nodes: { ...state.nodes, [node.id]: node } };
}
