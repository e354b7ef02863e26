import type { ExtentStatus } from '../block-device.js';

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

/** Bound on the work of one blockStatus call; the answer may cover less than asked (NBD allows it). */
export const BLOCK_STATUS_MAX_EXTENTS = 65536;

/**
 * blockStatus of a volume or snapshot from its extent map: mapped extents
 * are data, unmapped ones holes that read as zeroes; neighbours of the same
 * kind merge into one run.
 */
export function extentMapStatus(
  map: Pick<ExtentMap, 'get'>,
  offset: number,
  lengthBytes: number,
  extentSizeBytes: number,
): ExtentStatus[] {
  const runs: { lengthBytes: number; hole: boolean; zero: boolean }[] = [];
  const end = offset + lengthBytes;
  for (let position = offset, scanned = 0; position < end && scanned < BLOCK_STATUS_MAX_EXTENTS; scanned += 1) {
    const logical = Math.floor(position / extentSizeBytes);
    const pieceEnd = Math.min(end, (logical + 1) * extentSizeBytes);
    const hole = map.get(logical) === undefined;
    const last = runs[runs.length - 1];
    if (last !== undefined && last.hole === hole) {
      last.lengthBytes += pieceEnd - position;
    } else {
      runs.push({ lengthBytes: pieceEnd - position, hole, zero: hole });
    }
    position = pieceEnd;
  }
  return runs;
}
