import type { BlockDevice } from '../block-device.js';

/**
 * Public face of blockdev/pool: the node's local disks pooled into fixed
 * extents, and thin volumes ("volume stores") carved from them.
 *
 * Ownership: the daemon opens one Pool per process over the sublevel it is
 * given; the Pool owns the disks' file descriptors and the extent maps.
 */

/** One `--disk PATH[:SIZE]`: a raw block device, or a file (created sparse when a size is given). */
export interface DiskSpec {
  readonly path: string;
  /** Required to create a new file disk; ignored (checked) for block devices. */
  readonly sizeBytes?: number;
}

export interface DiskStats {
  readonly id: string;
  readonly path: string;
  readonly kind: 'file' | 'block';
  readonly capacityBytes: number;
  readonly usedBytes: number;
  readonly extentSizeBytes: number;
}

export interface PoolStats {
  readonly poolId: string;
  readonly extentSizeBytes: number;
  readonly capacityBytes: number;
  readonly usedBytes: number;
  readonly disks: readonly DiskStats[];
}

/** A thin volume's data on this node: a BlockDevice plus lifecycle. */
export interface VolumeStore extends BlockDevice {
  readonly volumeId: string;
  /** Bytes of extents currently allocated to this volume. */
  allocatedBytes(): number;
  /** Flush, then stop accepting I/O; later calls throw SHUTTING_DOWN. */
  close(): Promise<void>;
}

/**
 * A point-in-time copy of a volume on this pool (issue 8). Read-only; shares
 * every extent with the volume (and with other snapshots and clones) until
 * one of them is overwritten: copy-on-write at extent granularity
 * (docs/snapshots.md).
 */
export interface SnapshotInfo {
  readonly snapshotId: string;
  /** The volume's logical size when the snapshot was taken. */
  readonly sizeBytes: number;
  /** Wall-clock time of creation on this node (Date.now()); other replicas' clocks differ. */
  readonly createdAtMs: number;
  /** Extents referenced by this snapshot only: what deleting it now would free. */
  readonly exclusiveBytes: number;
  /** Extents this snapshot shares with its volume, other snapshots or clones. exclusive + shared = its allocated bytes. */
  readonly sharedBytes: number;
}

/** A snapshot opened for reading: a BlockDevice whose writes, trims and zeroes throw READ_ONLY. */
export interface SnapshotStore extends BlockDevice {
  readonly volumeId: string;
  readonly snapshotId: string;
  /** Stop accepting reads (later calls throw SHUTTING_DOWN) and let deleteSnapshot/deleteVolume proceed. Idempotent. */
  close(): Promise<void>;
}

export interface DeleteVolumeOptions {
  /** Close the volume's open store first instead of refusing (VOLUME_ATTACHED): for freeing a replica nobody may write any more. */
  readonly closeIfOpen?: boolean;
}

export interface Pool {
  readonly poolId: string;
  /** usedBytes counts each physical extent once, however many volumes, snapshots and clones share it. */
  stats(): PoolStats;
  /**
   * Open (or create on first use) the store of `volumeId` with the given
   * logical size. One store instance per volume at a time: a second open of
   * an open volume returns the same instance.
   */
  openVolume(volumeId: string, sizeBytes: number): Promise<VolumeStore>;
  /** Grow an open or closed volume's logical size (never shrinks). */
  resizeVolume(volumeId: string, sizeBytes: number): Promise<void>;
  /**
   * Delete a volume and all its snapshots, durably, and free every extent
   * nothing else references. Clones made from its snapshots are independent
   * volumes that hold their own references: their extents stay. The volume
   * must not be open (VOLUME_ATTACHED) unless `closeIfOpen`, which closes its
   * store in the same queued step, so no concurrent open slips in between the
   * close and the delete; none of its snapshots may be open (SNAPSHOT_OPEN).
   * Unknown volumes are a no-op (idempotent for reconcilers).
   */
  deleteVolume(volumeId: string, options?: DeleteVolumeOptions): Promise<void>;
  /** Bytes of extents mapped by a volume, open or not, shared ones included (0 for an unknown volume). */
  volumeAllocatedBytes(volumeId: string): number;
  /** Flush every open volume and close the disks. */
  close(): Promise<void>;

  // --- snapshots and clones (issue 8; docs/snapshots.md) ---
  // Snapshot ids: 1-255 of [A-Za-z0-9._:-], starting alphanumeric (no '@',
  // so an export name `volume@snapshot` splits at its last '@'); unique per
  // volume (the cluster makes them unique cluster-wide). Every operation
  // below runs in the pool's control queue, one at a time, and is durable
  // when its promise resolves.

  /**
   * Record the volume's current content as snapshot `snapshotId`: flushes
   * the pool (data, then mappings), then writes the snapshot's extent map in
   * one synced batch. No data is copied: every extent becomes shared and the
   * volume's next write into it copies on write. Crash-consistent: the
   * caller must have quiesced writes to the volume (the owner pauses new
   * writes and drains those in flight); a write still in flight while this
   * runs may or may not be in the snapshot. The volume may be open or closed.
   * An existing snapshot with the same id is a no-op success (ids are unique
   * cluster-wide; a replica may receive the request twice).
   * VOLUME_NOT_FOUND when the pool has no store for the volume;
   * SNAPSHOT_LIMIT past 1024 snapshots of one volume (MAX_SNAPSHOTS_PER_VOLUME).
   */
  createSnapshot(volumeId: string, snapshotId: string): Promise<void>;
  /**
   * Open a snapshot read-only, usable while the volume keeps being written.
   * One instance per snapshot at a time: a second open returns the same one
   * (its close() closes it for every holder). VOLUME_NOT_FOUND / SNAPSHOT_NOT_FOUND.
   */
  openSnapshot(volumeId: string, snapshotId: string): Promise<SnapshotStore>;
  /**
   * Delete a snapshot durably and free the extents only it referenced.
   * Unknown volume or snapshot: no-op. SNAPSHOT_OPEN while it is open.
   */
  deleteSnapshot(volumeId: string, snapshotId: string): Promise<void>;
  /** The volume's snapshots, oldest first, with honest space accounting. [] for an unknown volume. */
  listSnapshots(volumeId: string): SnapshotInfo[];
  /**
   * Create `newVolumeId` as a writable volume whose content is the snapshot's
   * (size `sizeBytes`, default the snapshot's; smaller is INVALID_SIZE). It
   * shares the snapshot's extents by reference count and copies on write;
   * deleting the snapshot or the source volume later does not affect it.
   * Repeating the same clone (same source, snapshot and new id) is a no-op;
   * a different existing `newVolumeId` is VOLUME_EXISTS.
   * VOLUME_NOT_FOUND / SNAPSHOT_NOT_FOUND for the source.
   */
  cloneVolume(sourceVolumeId: string, snapshotId: string, newVolumeId: string, sizeBytes?: number): Promise<void>;
  /**
   * Make the volume's content the snapshot's, durably (a remap: no data is
   * copied). The volume keeps its current logical size (volumes never
   * shrink); bytes past the snapshot's size read as zeroes. The snapshot
   * itself stays. The volume must not be open (VOLUME_ATTACHED).
   */
  revertVolume(volumeId: string, snapshotId: string): Promise<void>;
  /** Logical extent indexes the snapshot maps (allocated; the rest read as zeroes), ascending. */
  snapshotExtents(volumeId: string, snapshotId: string): Iterable<number>;
  /**
   * Logical extent indexes, ascending, where `toSnapshotId` may differ from
   * `fromSnapshotId` (both of `volumeId`): mapped to a different physical
   * extent, mapped in one and not the other (a mapping dropped by a trim is
   * listed, so a receiver zeroes it). Same physical extent means same bytes,
   * because shared extents are never written in place. Extents past the
   * smaller snapshot's end are compared like any other.
   */
  changedExtents(volumeId: string, fromSnapshotId: string, toSnapshotId: string): number[];
  /** The extent size of the pool: logical extent index i covers bytes [i * extentSizeBytes, (i + 1) * extentSizeBytes). */
  readonly extentSizeBytes: number;
}
