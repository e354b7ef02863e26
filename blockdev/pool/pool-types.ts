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

export interface Pool {
  readonly poolId: string;
  stats(): PoolStats;
  /**
   * Open (or create on first use) the store of `volumeId` with the given
   * logical size. One store instance per volume at a time: a second open of
   * an open volume returns the same instance.
   */
  openVolume(volumeId: string, sizeBytes: number): Promise<VolumeStore>;
  /** Grow an open or closed volume's logical size (never shrinks). */
  resizeVolume(volumeId: string, sizeBytes: number): Promise<void>;
  /** Free every extent of the volume, durably. The volume must not be open. */
  deleteVolume(volumeId: string): Promise<void>;
  /** Allocated bytes of a volume, open or not. */
  volumeAllocatedBytes(volumeId: string): number;
  /** Flush every open volume and close the disks. */
  close(): Promise<void>;
}
