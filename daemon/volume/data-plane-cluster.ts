/**
 * What the data plane needs of the cluster state and its command log: a
 * narrow port, so volume sessions do not depend on the exact shape of the
 * Raft-backed records (daemon/state is owned by the cluster work) and unit
 * tests can drive them with a small in-memory cluster.
 *
 * Every method that changes something resolves only once the change is
 * committed (ARCHITECTURE invariants 2 and 3).
 */

export type ReplicaHealth = 'in-sync' | 'rebuilding' | 'faulted';

export interface PlacedReplica {
  readonly nodeId: string;
  readonly state: ReplicaHealth;
  /** Out of sync only: in-sync replica's node id → dirty marker from before the first write this one missed (delta resync). */
  readonly resyncMarkers?: Readonly<Record<string, number>>;
  /** Issue 7: highest generation whose acknowledged writes it holds; missing = 0 (daemon/state/data-generations.ts). */
  readonly dataGeneration?: number;
}

export interface VolumePlacement {
  readonly volumeId: string;
  readonly name: string;
  readonly sizeBytes: number;
  /** The committed generation (invariant 3). */
  readonly generation: number;
  /** Node serving the volume; null when detached. */
  readonly ownerNodeId: string | null;
  readonly replicas: readonly PlacedReplica[];
  /** How long a lost replica may stay faulted before it is replaced elsewhere (issue 4 "Rebuild"). */
  readonly graceMs: number;
}

export interface PeerAddress {
  readonly host: string;
  readonly port: number;
}

export interface DataPlaneCluster {
  volume(name: string): VolumePlacement | undefined;
  /** False when the cluster marked the node down (missed heartbeats) or does not know it. */
  nodeIsUp(nodeId: string): boolean;
  peerAddress(nodeId: string): PeerAddress | undefined;
  /** Commit "volume attached to nodeId" with a new, higher generation; resolves with the committed placement. */
  attach(name: string, nodeId: string, force: boolean): Promise<VolumePlacement>;
  /**
   * Commit "replica on nodeId leaves the in-sync set" (invariant 2); refused
   * if `generation` is stale. `resyncMarkers`: dirty markers of the in-sync
   * replicas that predate every write it missed (delta resync, issue 4).
   */
  faultReplica(name: string, nodeId: string, generation: number, resyncMarkers?: Readonly<Record<string, number>>): Promise<void>;
  /** Commit "replica on nodeId is being rebuilt" (progress is visible; not in the in-sync set). */
  markRebuilding(name: string, nodeId: string, generation: number): Promise<void>;
  /** Commit "replica on nodeId is back in the in-sync set" (invariant 4: only after a complete catch-up). */
  markInSync(name: string, nodeId: string, generation: number): Promise<void>;
}

export function inSyncNodeIds(placement: VolumePlacement): string[] {
  return placement.replicas.filter((replica) => replica.state === 'in-sync').map((replica) => replica.nodeId);
}
