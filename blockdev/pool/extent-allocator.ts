import { PlinthError } from '../../common/plinth-error.js';
import { locationDiskIndex, locationExtentIndex, packLocation } from './extent-map.js';

/**
 * Free-extent bookkeeping for every disk of the pool. Pure state plus one
 * injected effect (persisting a high-water mark); no disk I/O.
 *
 * Extent 0 of each disk holds the superblock and is never handed out.
 *
 * Known-zero extents and the high-water mark (HWM). Extents at or above a
 * disk's durable HWM have never been handed out, so on a sparse file that
 * Plinth created they still read as zeroes and can be mapped without being
 * zeroed. Before the allocator hands out an extent at index >= HWM it makes
 * a higher HWM durable (in chunks, to amortise the sync): otherwise a crash
 * could forget that the extent was written, and a later allocation would
 * expose the old bytes as "known zero". Block devices and pre-existing files
 * start with HWM = extent count: nothing on them is known zero.
 *
 * Reuse safety. Every extent below the HWM that is free is "reusable": it may
 * hold another volume's old data, so the caller must zero it before its
 * mapping becomes visible (allocate() says so with knownZero: false).
 * Freed extents are first PENDING: they become reusable only after the
 * metadata batch that unmaps them is durable (release()), so a crash can
 * never leave an old mapping pointing at an extent that another volume
 * already uses.
 */

const FREE = 0;
const USED = 1;
const PENDING_FREE = 2;

export const FIRST_DATA_EXTENT = 1;
export const DEFAULT_HWM_CHUNK_EXTENTS = 64;

export interface AllocatorDiskOptions {
  readonly index: number;
  /** Total extents on the disk, including the reserved extent 0. */
  readonly extentCount: number;
  /** Durable high-water mark loaded from metadata. */
  readonly highWaterMark: number;
}

export interface Allocation {
  readonly location: number;
  /** True when the extent is known to read as zeroes (never handed out on a sparse disk we created). */
  readonly knownZero: boolean;
}

export interface ExtentAllocatorModules {
  /** Make a disk's new HWM durable (sync) before the allocator relies on it. */
  readonly persistHighWaterMark: (diskIndex: number, highWaterMark: number) => Promise<void>;
}

class DiskExtents {
  readonly index: number;
  readonly extentCount: number;
  readonly states: Uint8Array;
  /** Extents in [nextFresh, extentCount) are free and known zero (when nextFresh < durableHwm, no sync is needed). */
  nextFresh: number;
  durableHwm: number;
  /** FREE extents below nextFresh. */
  reusableCount = 0;
  usedCount = 0;
  pendingFreeCount = 0;
  reuseCursor = FIRST_DATA_EXTENT;
  hwmBump: Promise<void> | null = null;

  constructor(options: AllocatorDiskOptions) {
    this.index = options.index;
    this.extentCount = options.extentCount;
    this.states = new Uint8Array(options.extentCount);
    this.states[0] = USED;
    this.durableHwm = Math.min(Math.max(options.highWaterMark, FIRST_DATA_EXTENT), options.extentCount);
    this.nextFresh = this.durableHwm;
  }

  get freeCount(): number {
    return this.reusableCount + (this.extentCount - this.nextFresh);
  }

  /** Next FREE extent below nextFresh, scanning round-robin from the cursor. Caller checks reusableCount > 0. */
  takeReusable(): number {
    for (let scanned = 0; scanned < this.nextFresh; scanned += 1) {
      if (this.reuseCursor >= this.nextFresh) {
        this.reuseCursor = FIRST_DATA_EXTENT;
      }
      const candidate = this.reuseCursor;
      this.reuseCursor += 1;
      if (this.states[candidate] === FREE) {
        return candidate;
      }
    }
    throw new PlinthError('INTERNAL', `allocator: disk ${this.index} counts ${this.reusableCount} reusable extents but has none`, {
      diskIndex: this.index,
    });
  }
}

export class ExtentAllocator {
  readonly #disks: DiskExtents[];
  readonly #byIndex = new Map<number, DiskExtents>();
  readonly #modules: ExtentAllocatorModules;
  readonly #hwmChunkExtents: number;
  #pendingFrees: number[] = [];
  /** Frees taken by a flush that has not yet released or requeued them. */
  #takenFreeCount = 0;

  constructor(options: { disks: readonly AllocatorDiskOptions[]; hwmChunkExtents?: number }, modules: ExtentAllocatorModules) {
    this.#disks = options.disks.map((disk) => new DiskExtents(disk));
    for (const disk of this.#disks) {
      this.#byIndex.set(disk.index, disk);
    }
    this.#modules = modules;
    this.#hwmChunkExtents = options.hwmChunkExtents ?? DEFAULT_HWM_CHUNK_EXTENTS;
  }

  /** At load: mark an extent that a durable mapping uses. Call finishLoad() after the last one. */
  markUsed(location: number): void {
    const disk = this.#disk(location);
    const extentIndex = locationExtentIndex(location);
    if (extentIndex < FIRST_DATA_EXTENT || extentIndex >= disk.durableHwm || disk.states[extentIndex] !== FREE) {
      throw new PlinthError(
        'METADATA_CORRUPT',
        `pool metadata maps disk ${disk.index} extent ${extentIndex}, which is reserved, above the high-water mark ${disk.durableHwm}, or mapped twice`,
        { diskIndex: disk.index, extentIndex, highWaterMark: disk.durableHwm },
      );
    }
    disk.states[extentIndex] = USED;
    disk.usedCount += 1;
  }

  finishLoad(): void {
    for (const disk of this.#disks) {
      disk.reusableCount = disk.nextFresh - FIRST_DATA_EXTENT - disk.usedCount;
    }
  }

  /** Pick an extent on the disk with the most free extents. Throws NO_SPACE when none is free. */
  async allocate(): Promise<Allocation> {
    for (;;) {
      const disk = this.#roomiest();
      if (disk === undefined) {
        throw new PlinthError('NO_SPACE', 'pool is full: no free extent on any disk', {
          pendingFreeExtents: this.pendingFreeCount,
        });
      }
      if (disk.nextFresh < disk.extentCount) {
        if (disk.nextFresh < disk.durableHwm) {
          const extentIndex = disk.nextFresh;
          disk.nextFresh += 1;
          return this.#take(disk, extentIndex, true);
        }
        await this.#bumpHighWaterMark(disk);
        continue;
      }
      return this.#take(disk, disk.takeReusable(), false);
    }
  }

  /** An allocation that never became a mapping (its write failed): back to reusable, not known zero. */
  returnUnused(location: number): void {
    const disk = this.#disk(location);
    const extentIndex = locationExtentIndex(location);
    this.#expectState(disk, extentIndex, USED, 'returnUnused');
    disk.states[extentIndex] = FREE;
    disk.usedCount -= 1;
    disk.reusableCount += 1;
  }

  /** The extent was unmapped; it becomes reusable only after release() (after the unmapping is durable). */
  free(location: number): void {
    const disk = this.#disk(location);
    const extentIndex = locationExtentIndex(location);
    this.#expectState(disk, extentIndex, USED, 'free');
    disk.states[extentIndex] = PENDING_FREE;
    disk.usedCount -= 1;
    disk.pendingFreeCount += 1;
    this.#pendingFrees.push(location);
  }

  /** Freed extents not yet reusable, including those a running flush is about to release. */
  get pendingFreeCount(): number {
    return this.#pendingFrees.length + this.#takenFreeCount;
  }

  /** Take the pending frees covered by the metadata batch about to be written. */
  takePendingFrees(): number[] {
    const taken = this.#pendingFrees;
    this.#pendingFrees = [];
    this.#takenFreeCount += taken.length;
    return taken;
  }

  /** The batch did not become durable: these stay pending. */
  requeuePendingFrees(locations: readonly number[]): void {
    this.#takenFreeCount -= locations.length;
    this.#pendingFrees.push(...locations);
  }

  /**
   * The unmapping of `locations` is durable: make them reusable, except those
   * that `isBusy` (an I/O that looked the mapping up is still in flight and
   * could still touch the extent); those stay pending for the next flush.
   */
  release(locations: readonly number[], isBusy: (location: number) => boolean): void {
    this.#takenFreeCount -= locations.length;
    for (const location of locations) {
      if (isBusy(location)) {
        this.#pendingFrees.push(location);
        continue;
      }
      const disk = this.#disk(location);
      const extentIndex = locationExtentIndex(location);
      this.#expectState(disk, extentIndex, PENDING_FREE, 'release');
      disk.states[extentIndex] = FREE;
      disk.pendingFreeCount -= 1;
      disk.reusableCount += 1;
    }
  }

  /** Extents in use on a disk, counting frees not yet durable. */
  usedExtents(diskIndex: number): number {
    const disk = this.#byIndex.get(diskIndex);
    return disk === undefined ? 0 : disk.usedCount + disk.pendingFreeCount;
  }

  /** Data extents of a disk (all but the reserved extent 0). */
  dataExtents(diskIndex: number): number {
    const disk = this.#byIndex.get(diskIndex);
    return disk === undefined ? 0 : disk.extentCount - FIRST_DATA_EXTENT;
  }

  #take(disk: DiskExtents, extentIndex: number, knownZero: boolean): Allocation {
    this.#expectState(disk, extentIndex, FREE, 'allocate');
    disk.states[extentIndex] = USED;
    disk.usedCount += 1;
    if (!knownZero) {
      disk.reusableCount -= 1;
    }
    return { location: packLocation(disk.index, extentIndex), knownZero };
  }

  #roomiest(): DiskExtents | undefined {
    let best: DiskExtents | undefined;
    for (const disk of this.#disks) {
      if (disk.freeCount > 0 && (best === undefined || disk.freeCount > best.freeCount)) {
        best = disk;
      }
    }
    return best;
  }

  /** One bump in flight per disk; concurrent allocations wait for it and retry. */
  #bumpHighWaterMark(disk: DiskExtents): Promise<void> {
    if (disk.hwmBump === null) {
      const target = Math.min(disk.extentCount, disk.nextFresh + this.#hwmChunkExtents);
      disk.hwmBump = this.#modules.persistHighWaterMark(disk.index, target).then(
        () => {
          disk.durableHwm = Math.max(disk.durableHwm, target);
          disk.hwmBump = null;
        },
        (err: unknown) => {
          disk.hwmBump = null;
          throw err;
        },
      );
    }
    return disk.hwmBump;
  }

  #disk(location: number): DiskExtents {
    const diskIndex = locationDiskIndex(location);
    const disk = this.#byIndex.get(diskIndex);
    if (disk === undefined) {
      throw new PlinthError('METADATA_CORRUPT', `extent location names unknown disk index ${diskIndex}`, { diskIndex });
    }
    return disk;
  }

  #expectState(disk: DiskExtents, extentIndex: number, expected: number, operation: string): void {
    const actual = disk.states[extentIndex];
    if (actual !== expected) {
      // Assert below (STYLE habit 5): a bookkeeping bug must stop here, not corrupt a volume.
      throw new PlinthError('INTERNAL', `allocator: ${operation} of disk ${disk.index} extent ${extentIndex} found state ${String(actual)}, expected ${expected}`, {
        diskIndex: disk.index,
        extentIndex,
        operation,
      });
    }
  }
}
