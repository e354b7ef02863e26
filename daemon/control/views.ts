import type { PoolStats } from '../../blockdev/pool/pool-types.js';
import type { DiskView, NodeView, VolumeView } from '../control-plane.js';
import type { NodeRecord, VolumeRecord } from '../state/cluster-state.js';

/**
 * Pure mappings from committed records plus live local facts to the views
 * the API serves. Live facts (allocation, connections, disks) are only known
 * for this node until the cluster issue gossips them.
 */
export interface LocalVolumeFacts {
  readonly allocatedBytes: number;
  readonly connections: number;
}

export function volumeView(volume: VolumeRecord, facts: LocalVolumeFacts): VolumeView {
  return {
    id: volume.id,
    name: volume.name,
    sizeBytes: volume.sizeBytes,
    replicaCount: volume.replicaCount,
    createdAt: volume.createdAt,
    attachedTo: volume.attachedTo,
    generation: volume.generation,
    // Single node: every replica is the local pool's store, always in sync.
    state: 'healthy',
    allocatedBytes: facts.allocatedBytes,
    replicas: volume.replicaNodeIds.map((nodeId) => ({ nodeId, state: 'in-sync' as const })),
    connections: facts.connections,
  };
}

export interface NodeFacts {
  readonly isLocal: boolean;
  readonly isLeader: boolean;
  /** The local pool's stats; null for other nodes (not known here yet). */
  readonly pool: PoolStats | null;
}

export function nodeView(node: NodeRecord, facts: NodeFacts): NodeView {
  const disks: DiskView[] = (facts.pool?.disks ?? []).map((disk) => ({
    id: disk.id,
    path: disk.path,
    kind: disk.kind,
    capacityBytes: disk.capacityBytes,
    usedBytes: disk.usedBytes,
    extentSizeBytes: disk.extentSizeBytes,
  }));
  return {
    id: node.id,
    state: facts.isLocal ? 'up' : 'down',
    leader: facts.isLeader,
    addresses: { ...node.addresses },
    disks,
    capacityBytes: facts.pool?.capacityBytes ?? 0,
    usedBytes: facts.pool?.usedBytes ?? 0,
  };
}
