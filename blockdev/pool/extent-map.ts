/**
 * Where a volume's logical extents live. A physical location is packed into
 * one safe integer, `diskIndex * 2^32 + extentIndex`, so the per-volume map
 * is a plain Map<number, number> with no per-entry objects (lookups on the
 * data path allocate nothing).
 */

const EXTENT_INDEX_SPAN = 2 ** 32;
/** Disk indexes stay below this so packed locations stay exact (< 2^48). */
export const MAX_DISKS = 2 ** 16;

export function packLocation(diskIndex: number, extentIndex: number): number {
  return diskIndex * EXTENT_INDEX_SPAN + extentIndex;
}

export function locationDiskIndex(location: number): number {
  return Math.floor(location / EXTENT_INDEX_SPAN);
}

export function locationExtentIndex(location: number): number {
  return location % EXTENT_INDEX_SPAN;
}

/**
 * The in-memory extent map of one volume (open or not): logical extent
 * index → packed physical location. Mutated only by the volume store (data
 * path) and the pool (load, delete); the durable copy is the `map!` keys of
 * metadata-store.ts, which lag behind until the next flush.
 */
export class ExtentMap {
  readonly #locations = new Map<number, number>();

  get(logicalIndex: number): number | undefined {
    return this.#locations.get(logicalIndex);
  }

  set(logicalIndex: number, location: number): void {
    this.#locations.set(logicalIndex, location);
  }

  delete(logicalIndex: number): boolean {
    return this.#locations.delete(logicalIndex);
  }

  get allocatedExtents(): number {
    return this.#locations.size;
  }

  entries(): IterableIterator<[number, number]> {
    return this.#locations.entries();
  }
}
