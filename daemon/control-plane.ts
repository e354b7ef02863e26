/**
 * The control plane as the API sees it. Single-node today (a local command
 * log); the cluster issue puts the same commands on Raft behind this same
 * interface. Every method throws PlinthError with a stable code.
 */
/** `receiving`: a `volume receive` is still writing it; it serves no client until the stream verified. */
export type VolumeState = 'healthy' | 'degraded' | 'faulted' | 'receiving';

export interface VolumeView {
  readonly id: string;
  readonly name: string;
  readonly sizeBytes: number;
  readonly replicaCount: number;
  readonly createdAt: string;
  /** Node that owns (serves) the volume, or null when detached. */
  readonly attachedTo: string | null;
  readonly generation: number;
  readonly state: VolumeState;
  /** Bytes of pool space the volume's extents use (thin provisioning). */
  readonly allocatedBytes: number;
  readonly replicas: readonly ReplicaView[];
  /** Live protocol connections on the owner. */
  readonly connections: number;
  /** How long a lost replica may stay away before it is replaced elsewhere. */
  readonly graceMs: number;
  /** Per-volume iSCSI CHAP, or null when the cluster-wide settings apply. Never carries a secret. */
  readonly chap: VolumeChapView | null;
  /** Issue 8: names of the volume's snapshots, oldest first (details: listSnapshots). Absent from test doubles. */
  readonly snapshots?: readonly string[];
  /** Issue 8: set on a clone, the snapshot it was made from. */
  readonly clonedFrom?: { readonly volumeId: string; readonly snapshotId: string };
}

/** `GET /v1/volumes/{name}/snapshots` (issue 8; docs/snapshots.md). */
export interface SnapshotView {
  readonly id: string;
  readonly name: string;
  readonly volume: string;
  readonly createdAt: string;
  /** The volume's size when it was taken (the `volume@snapshot` export's size). */
  readonly sizeBytes: number;
  /** The volume generation it was taken at. */
  readonly generation: number;
  /** Nodes whose pool holds it. */
  readonly holders: readonly string[];
  readonly groupId?: string;
  /**
   * Pool space as the answering node measures it, when it is a holder:
   * exclusive = what deleting it would free there; shared = extents it
   * shares with the volume, other snapshots or clones. null elsewhere.
   */
  readonly space: SnapshotSpaceView | null;
}

/** `POST /v1/snapshot-groups`: one consistent point across volumes, one snapshot per volume. */
export interface SnapshotGroupView {
  readonly groupId: string;
  readonly name: string;
  readonly snapshots: readonly SnapshotView[];
}

export interface SnapshotSpaceView {
  readonly measuredOn: string;
  readonly exclusiveBytes: number;
  readonly sharedBytes: number;
}

export interface VolumeChapView {
  /** The CHAP_N the initiator must log in with. */
  readonly user: string;
  /** True when the target also proves itself to the initiator (mutual CHAP). */
  readonly mutual: boolean;
}

/** `PUT /v1/volumes/{name}/chap`: per-volume iSCSI CHAP secrets (docs/iscsi.md "CHAP"). */
export interface VolumeChapRequest {
  readonly user: string;
  readonly secret: string;
  /** Mutual CHAP: both or neither. */
  readonly targetUser?: string;
  readonly targetSecret?: string;
}

export interface ReplicaView {
  readonly nodeId: string;
  readonly state: 'in-sync' | 'rebuilding' | 'faulted';
  /** The latest volume generation whose acknowledged writes this replica holds (data-generations.ts; 0 = unknown). */
  readonly dataGeneration?: number;
  /** Catch-up progress, known on the owner only (its rebuild reconciler); absent elsewhere or when none ran. */
  readonly rebuild?: RebuildProgressView;
}

export interface RebuildProgressView {
  /** Bytes caught up so far (copied or zeroed). */
  readonly copiedBytes: number;
  readonly totalBytes: number;
  /** False while the catch-up runs. */
  readonly done: boolean;
}

export interface DiskView {
  readonly id: string;
  readonly path: string;
  readonly kind: 'file' | 'block';
  readonly capacityBytes: number;
  readonly usedBytes: number;
  readonly extentSizeBytes: number;
}

export interface NodeView {
  readonly id: string;
  readonly state: 'up' | 'down';
  readonly leader: boolean;
  readonly addresses: { readonly api: string; readonly peer: string; readonly nbd: string; readonly iscsi: string };
  /** Failure-domain labels the scheduler spreads replicas over (only those set). */
  readonly labels: { readonly zone?: string; readonly rack?: string };
  readonly disks: readonly DiskView[];
  readonly capacityBytes: number;
  readonly usedBytes: number;
  /** Present while the node is draining (issue 4 "Drain"); absent otherwise. */
  readonly drain?: NodeDrainView;
}

/** `node drain` progress: done when no replica and no attachment is left on the node. */
export interface NodeDrainView {
  /** ISO-8601 of the node.drain that started it. */
  readonly since: string;
  /** Volumes that still have a replica on the node. */
  readonly replicasLeft: number;
  /** Volumes still attached (served) on the node. */
  readonly attachedVolumes: readonly string[];
  /** What keeps the drain from finishing, per volume, in words an operator can act on. */
  readonly blocking: readonly { readonly volume: string; readonly reason: string }[];
  readonly done: boolean;
}

export interface ClusterView {
  readonly clusterId: string;
  readonly leaderId: string | null;
  readonly nodeCount: number;
  readonly volumeCount: number;
  readonly capacityBytes: number;
  readonly usedBytes: number;
  readonly version: string;
}

export interface CreateVolumeRequest {
  readonly name: string;
  readonly sizeBytes: number;
  readonly replicaCount?: number;
  /** How long a lost replica may stay away before it is replaced elsewhere (default DEFAULT_GRACE_MS). */
  readonly graceMs?: number;
}

export interface Readiness {
  readonly ready: boolean;
  readonly reasons: readonly string[];
}

export interface ControlPlane {
  cluster(): Promise<ClusterView>;
  nodes(): Promise<NodeView[]>;
  listVolumes(): Promise<VolumeView[]>;
  /** Throws VOLUME_NOT_FOUND. */
  getVolume(name: string): Promise<VolumeView>;
  /** Throws INVALID_NAME, INVALID_SIZE, VOLUME_EXISTS, INVALID_ARGUMENT (more replicas than nodes). */
  createVolume(request: CreateVolumeRequest): Promise<VolumeView>;
  /** Grow only; throws INVALID_SIZE when shrinking. */
  resizeVolume(name: string, sizeBytes: number): Promise<VolumeView>;
  /** Throws VOLUME_ATTACHED while attached. */
  deleteVolume(name: string): Promise<void>;
  attachVolume(name: string, nodeId: string, options?: { readonly force?: boolean }): Promise<VolumeView>;
  /** Refused with VOLUME_ATTACHED while clients are connected, unless forced (which disconnects them). */
  detachVolume(name: string, options?: { readonly force?: boolean }): Promise<VolumeView>;
  readiness(): Readiness;
  /**
   * Set (replace) the volume's iSCSI CHAP secrets; they apply from the next
   * login on every node. Throws VOLUME_NOT_FOUND, INVALID_ARGUMENT (secret
   * length, incomplete pair, target secret equal to the initiator's).
   */
  setVolumeChap(name: string, request: VolumeChapRequest): Promise<VolumeView>;
  /** Clear them: the cluster-wide settings apply again. Idempotent; throws VOLUME_NOT_FOUND. */
  clearVolumeChap(name: string): Promise<VolumeView>;
  /**
   * `plinth node rm ID`: remove a member (Raft voter and its replicas).
   * Throws NODE_NOT_FOUND, LAST_IN_SYNC_REPLICA (it holds a volume's last
   * in-sync copy). Optional so test doubles without clustering still fit.
   */
  removeNode?(nodeId: string): Promise<void>;
  /**
   * `plinth node drain ID`: mark the node draining (no new replicas; its
   * replicas and attachments move away). Idempotent; throws NODE_NOT_FOUND.
   */
  drainNode?(nodeId: string): Promise<NodeView>;
  /** `plinth node undrain ID`: cancel a drain (what already moved stays moved). */
  undrainNode?(nodeId: string): Promise<NodeView>;
  // --- issue 8: snapshots (docs/snapshots.md). Optional so test doubles without them still fit. ---
  /** Oldest first. Throws VOLUME_NOT_FOUND. */
  listSnapshots?(volume: string): Promise<SnapshotView[]>;
  /** Crash-consistent, on every in-sync replica. Throws VOLUME_NOT_FOUND, INVALID_NAME, SNAPSHOT_EXISTS, FENCED (retry), TIMEOUT. */
  createSnapshot?(volume: string, snapshot: string): Promise<SnapshotView>;
  /** Throws VOLUME_NOT_FOUND, SNAPSHOT_NOT_FOUND. */
  deleteSnapshot?(volume: string, snapshot: string): Promise<void>;
  /** A new detached volume sharing the snapshot's extents. Throws SNAPSHOT_NOT_FOUND, VOLUME_EXISTS, INVALID_NAME. */
  cloneVolume?(volume: string, snapshot: string, cloneName: string): Promise<VolumeView>;
  /** Detached volumes only (VOLUME_ATTACHED names the owner). Throws SNAPSHOT_NOT_FOUND (also: an in-sync replica lacks it). */
  revertVolume?(volume: string, snapshot: string): Promise<VolumeView>;
  /** Group snapshot: every owner paused before any replica takes it. Throws like createSnapshot, per volume. */
  createSnapshotGroup?(name: string, volumes: readonly string[]): Promise<SnapshotGroupView>;
}
