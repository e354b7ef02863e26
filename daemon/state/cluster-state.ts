import type { ReservationImage } from '../../blockdev/iscsi/scsi/scsi-reservation-image.js';
import type { VolumeChapSecrets } from './volume-chap-commands.js';
import type { ClonedFrom, SnapshotRecord } from './snapshot-commands.js';
import type { ReceivedSnapshot, ReceiveRecord } from './receive-commands.js';
import type { SnapshotSchedule } from './snapshot-schedule-commands.js';

/**
 * The replicated cluster state: what every node agrees on (ARCHITECTURE
 * "daemon" room). Plain JSON all the way down, so the Raft state machine
 * snapshots it as is. Records are immutable; applyCommand returns new
 * objects and never edits old ones.
 */
export interface NodeAddresses {
  readonly api: string;
  readonly peer: string;
  readonly nbd: string;
  readonly iscsi: string;
}

/** Failure-domain labels (issue 4 "Scheduler"); same shape as the scheduler's NodeLabels. */
export interface NodeLabels {
  readonly zone?: string;
  readonly rack?: string;
}

/** Liveness as committed by the leader from Raft heartbeats (node.down / node.up). */
export type NodeLiveness = 'up' | 'down';

export interface NodeRecord {
  readonly id: string;
  readonly addresses: NodeAddresses;
  readonly labels: NodeLabels;
  readonly state: NodeLiveness;
  /** ISO-8601 of the last node.down/node.up (or the join). */
  readonly stateSince: string;
  /** ISO-8601, decided by the proposer of node.join. */
  readonly joinedAt: string;
  /** Capacity summary reported by the node itself through node.capacity. */
  readonly capacityBytes: number;
  readonly freeBytes: number;
  readonly diskCount: number;
  /** ISO-8601 of the last node.capacity; null before the first report. */
  readonly capacityReportedAt: string | null;
  /**
   * ISO-8601 of the node.drain that started draining it (issue 4 "Drain"):
   * no new replicas go there and the drain reconciler moves its replicas and
   * attachments away. Absent: not draining (also in snapshots and logs
   * written before drain existed).
   */
  readonly drainingSince?: string;
}

/**
 * A replica's place in its volume (ARCHITECTURE invariants 2 and 4):
 * - in-sync: receives every write; a write is acked only once all in-sync replicas acked it;
 * - rebuilding: being caught up while live writes continue; not a read source;
 * - faulted: left the in-sync set through a committed replica.fault; holds stale data.
 */
export type ReplicaState = 'in-sync' | 'rebuilding' | 'faulted';

export interface ReplicaRecord {
  readonly nodeId: string;
  readonly state: ReplicaState;
  /** ISO-8601 of the last state change, decided by the proposer (grace period clock). */
  readonly since: string;
  /**
   * Not in-sync only: node id of an in-sync replica → its dirty marker from
   * before the first write this replica missed (recorded by replica.fault).
   * A rebuilder copies what changed on that replica since; absent (old
   * state, or no marker known): a full copy.
   */
  readonly resyncMarkers?: Readonly<Record<string, number>>;
  /**
   * Data generation (issue 7, data-generations.ts): the highest volume
   * generation whose acknowledged writes this replica is known to hold.
   * Stamped with the new generation on every current replica when an attach
   * commits one, frozen by replica.fault, set to the current generation by
   * replica.in-sync. Absent (snapshots and logs from before issue 7, or a
   * replica never stamped): unknown, read as 0.
   */
  readonly dataGeneration?: number;
}

export const DEFAULT_GRACE_MS = 10 * 60 * 1000;

export interface VolumeRecord {
  readonly id: string;
  readonly name: string;
  readonly sizeBytes: number;
  readonly replicaCount: number;
  /** ISO-8601, decided by the proposer. */
  readonly createdAt: string;
  /** The owner: the node that serves the volume; null when detached. */
  readonly attachedTo: string | null;
  /** Bumped by every change of owner (ARCHITECTURE invariant 3); replicas fence lower ones. */
  readonly generation: number;
  /** One per node, in placement order. */
  readonly replicas: readonly ReplicaRecord[];
  /** How long a faulted replica may stay away before it is replaced elsewhere (issue 4 "Rebuild"). */
  readonly graceMs: number;
  /**
   * iSCSI persistent reservations (SPC-4 §5.9) as the owner last committed
   * them with volume.scsi-reservations (scsi-reservation-commands.ts), so a
   * new owner after failover keeps the fence. Absent: none ever committed.
   * Goes with the volume on volume.delete.
   */
  readonly scsiReservations?: ReservationImage;
  /**
   * iSCSI CHAP secrets of this volume's target, set with volume.chap
   * (volume-chap-commands.ts); they override the nodes' cluster-wide ones.
   * Absent: the cluster-wide settings apply. Never shown by the API.
   */
  readonly chap?: VolumeChapSecrets;
  /**
   * Issue 8 (snapshot-commands.ts): the volume's snapshots, oldest first, and
   * which nodes hold each. Absent: none ever taken. Goes with the volume on
   * volume.delete (every holder's pool deletes them with the volume).
   */
  readonly snapshots?: readonly SnapshotRecord[];
  /** Set by volume.clone: the snapshot the clone was made from. */
  readonly clonedFrom?: ClonedFrom;
  /** Issue 8 retention (snapshot-schedule-commands.ts): auto snapshots every everyMs, keep the newest `keep`. Absent: none. */
  readonly snapshotSchedule?: SnapshotSchedule;
  /** Issue 8 receive (receive-commands.ts): set while a receive writes the volume; it is not served meanwhile. */
  readonly receive?: ReceiveRecord;
  /** Issue 8 receive: local snapshot name → the source snapshot it was received as (an incremental's base is found by source id). */
  readonly receivedSnapshots?: readonly ReceivedSnapshot[];
}

export interface ClusterState {
  /** Set once by cluster.init at bootstrap. */
  readonly clusterId: string | null;
  /** Keyed by node id. */
  readonly nodes: Readonly<Record<string, NodeRecord>>;
  /** Keyed by volume name: every lookup from NBD, iSCSI and REST is by name. */
  readonly volumes: Readonly<Record<string, VolumeRecord>>;
}

export function emptyClusterState(): ClusterState {
  return { clusterId: null, nodes: {}, volumes: {} };
}

export function nodeCount(state: ClusterState): number {
  return Object.keys(state.nodes).length;
}

/** Own-property lookup, so a volume called "constructor" or "__proto__" is just a missing key. */
export function findVolume(state: ClusterState, name: string): VolumeRecord | undefined {
  return Object.hasOwn(state.volumes, name) ? state.volumes[name] : undefined;
}

/** Volumes are keyed by name; SCSI state and replicas by the stable id (a bounded scan: at most MAX_VOLUMES). */
export function findVolumeById(state: ClusterState, volumeId: string): VolumeRecord | undefined {
  return Object.values(state.volumes).find((volume) => volume.id === volumeId);
}

export function findNode(state: ClusterState, id: string): NodeRecord | undefined {
  return Object.hasOwn(state.nodes, id) ? state.nodes[id] : undefined;
}

/** The owner node id (alias of attachedTo, the name the REST contract uses). */
export function volumeOwner(volume: VolumeRecord): string | null {
  return volume.attachedTo;
}

/** Node ids holding a replica, in placement order. */
export function replicaNodeIds(volume: VolumeRecord): string[] {
  return volume.replicas.map((replica) => replica.nodeId);
}

/** Node ids of the in-sync set: the only read sources and failover sources (invariant 4). */
export function inSyncNodeIds(volume: VolumeRecord): string[] {
  return volume.replicas.filter((replica) => replica.state === 'in-sync').map((replica) => replica.nodeId);
}

export function findReplica(volume: VolumeRecord, nodeId: string): ReplicaRecord | undefined {
  return volume.replicas.find((replica) => replica.nodeId === nodeId);
}

/** True when the node exists and an operator asked to drain it (node.drain). */
export function isNodeDraining(state: ClusterState, nodeId: string): boolean {
  return findNode(state, nodeId)?.drainingSince !== undefined;
}

/** True when the node exists and its last committed liveness is up. */
export function isNodeUp(state: ClusterState, nodeId: string): boolean {
  return findNode(state, nodeId)?.state === 'up';
}
