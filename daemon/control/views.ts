import type { PoolStats } from '../../blockdev/pool/pool-types.js';
import type { DiskView, NodeDrainView, NodeView, RebuildProgressView, SnapshotSpaceView, SnapshotView, VolumeView } from '../control-plane.js';
import type { SnapshotRecord } from '../state/snapshot-commands.js';
import type { NodeRecord, VolumeRecord } from '../state/cluster-state.js';
import { dataGenerationOf } from '../state/data-generations.js';

/**
 * Pure mappings from committed records plus live local facts to the views
 * the API serves. Live facts (allocation, connections, disks) are known for
 * this node only; other nodes show their committed capacity summary.
 */
export interface LocalVolumeFacts {
  readonly allocatedBytes: number;
  readonly connections: number;
  /** Rebuild progress by replica node id, from the owner's reconciler; empty elsewhere. */
  readonly rebuilds?: ReadonlyMap<string, RebuildProgressView>;
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
    state: volumeHealth(volume),
    allocatedBytes: facts.allocatedBytes,
    replicas: volume.replicas.map((replica) => {
      const rebuild = facts.rebuilds?.get(replica.nodeId);
      const base = { nodeId: replica.nodeId, state: replica.state, dataGeneration: dataGenerationOf(replica) };
      return rebuild === undefined ? base : { ...base, rebuild };
    }),
    connections: facts.connections,
    graceMs: volume.graceMs,
    chap: volumeChapView(volume),
    // Only when there are some: views of volumes without snapshots stay as they were.
    ...(volume.snapshots === undefined || volume.snapshots.length === 0 ? {} : { snapshots: volume.snapshots.map((snapshot) => snapshot.name) }),
    ...(volume.clonedFrom === undefined ? {} : { clonedFrom: { ...volume.clonedFrom } }),
  };
}

/** Issue 8: a committed snapshot plus, on a holder, the pool's space accounting of it. */
export function snapshotView(volume: VolumeRecord, snapshot: SnapshotRecord, space: SnapshotSpaceView | null): SnapshotView {
  return {
    id: snapshot.id,
    name: snapshot.name,
    volume: volume.name,
    createdAt: snapshot.createdAt,
    sizeBytes: snapshot.sizeBytes,
    generation: snapshot.generation,
    holders: [...snapshot.holders],
    ...(snapshot.groupId === undefined ? {} : { groupId: snapshot.groupId }),
    space,
  };
}

/** Who must log in, and whether the target answers back; the secrets stay in the state. */
function volumeChapView(volume: VolumeRecord): VolumeView['chap'] {
  const chap = volume.chap;
  if (chap === undefined) return null;
  return { user: chap.user, mutual: chap.targetUser !== undefined && chap.targetSecret !== undefined };
}

/** healthy: every wanted replica in sync; degraded: some are not; faulted: none is. */
export function volumeHealth(volume: VolumeRecord): VolumeView['state'] {
  if (volume.receive !== undefined) return 'receiving';
  const inSync = volume.replicas.filter((replica) => replica.state === 'in-sync').length;
  if (inSync === 0) return 'faulted';
  return inSync >= volume.replicaCount ? 'healthy' : 'degraded';
}

export interface NodeFacts {
  readonly isLocal: boolean;
  readonly isLeader: boolean;
  /** The local pool's stats; null for other nodes (their committed summary is used). */
  readonly pool: PoolStats | null;
  /** Drain progress while the node is draining (drain-plan.ts drainProgress). */
  readonly drain?: NodeDrainView;
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
  // Live pool facts for this node; the committed node.capacity summary for the others.
  return {
    id: node.id,
    state: node.state,
    leader: facts.isLeader,
    addresses: { ...node.addresses },
    labels: { ...node.labels },
    disks,
    capacityBytes: facts.pool?.capacityBytes ?? node.capacityBytes,
    usedBytes: facts.pool?.usedBytes ?? node.capacityBytes - node.freeBytes,
    ...(facts.drain === undefined ? {} : { drain: facts.drain }),
  };
}
