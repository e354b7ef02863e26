import { PlinthError } from '../../common/plinth-error.js';
import type { Disk } from './disk.js';
import { locationDiskIndex, locationExtentIndex } from './extent-map.js';

/**
 * Byte I/O on physical extent locations, with in-flight tracking.
 *
 * Every read or write that looked a location up in a volume's extent map
 * holds it "in flight" until the disk operation completes. The flush only
 * makes a freed extent reusable when nothing holds it, so an I/O that raced
 * with a TRIM can never land on (or read from) an extent that another volume
 * has been given meanwhile. Callers must acquire in the same tick as the map
 * lookup: the methods here do, by taking the location synchronously.
 */

/** Shared source of zero bytes for zeroing; only ever read from. */
const ZERO_CHUNK_BYTES = 1024 * 1024;
const ZERO_CHUNK: Buffer = Buffer.alloc(ZERO_CHUNK_BYTES);

export class InFlightExtents {
  readonly #counts = new Map<number, number>();

  acquire(location: number): void {
    this.#counts.set(location, (this.#counts.get(location) ?? 0) + 1);
  }

  release(location: number): void {
    const count = this.#counts.get(location) ?? 0;
    if (count <= 1) {
      this.#counts.delete(location);
    } else {
      this.#counts.set(location, count - 1);
    }
  }

  has(location: number): boolean {
    return this.#counts.has(location);
  }
}

export class ExtentIo {
  readonly extentSizeBytes: number;
  readonly inFlight = new InFlightExtents();
  readonly #disks: ReadonlyMap<number, Disk>;

  constructor(options: { extentSizeBytes: number; disks: ReadonlyMap<number, Disk> }) {
    this.extentSizeBytes = options.extentSizeBytes;
    this.#disks = options.disks;
  }

  /** Read `lengthBytes` at `offsetInExtent` of a mapped extent into `target[targetOffset..]`. */
  async read(location: number, offsetInExtent: number, target: Buffer, targetOffset: number, lengthBytes: number): Promise<void> {
    const disk = this.disk(location);
    this.inFlight.acquire(location);
    try {
      await disk.read(target, targetOffset, lengthBytes, this.#position(location, offsetInExtent));
    } finally {
      this.inFlight.release(location);
    }
  }

  async write(location: number, offsetInExtent: number, source: Buffer, sourceOffset: number, lengthBytes: number): Promise<void> {
    const disk = this.disk(location);
    this.inFlight.acquire(location);
    try {
      await disk.write(source, sourceOffset, lengthBytes, this.#position(location, offsetInExtent));
    } finally {
      this.inFlight.release(location);
    }
  }

  /**
   * Synchronous fast paths (disk.ts tryReadInline/tryWriteInline): true when
   * the I/O completed inline, false when nothing was done. No in-flight
   * hold is needed: nothing else runs on the loop between the map lookup
   * and the end of a synchronous call, so no TRIM can free the extent.
   */
  tryReadInline(location: number, offsetInExtent: number, target: Buffer, targetOffset: number, lengthBytes: number): boolean {
    return this.disk(location).tryReadInline(target, targetOffset, lengthBytes, this.#position(location, offsetInExtent));
  }

  tryWriteInline(location: number, offsetInExtent: number, source: Buffer, sourceOffset: number, lengthBytes: number): boolean {
    return this.disk(location).tryWriteInline(source, sourceOffset, lengthBytes, this.#position(location, offsetInExtent));
  }

  /** Write `chunks` (lengthBytes in all) back to back at `offsetInExtent` of a mapped extent. */
  async writev(location: number, offsetInExtent: number, chunks: readonly Buffer[], lengthBytes: number): Promise<void> {
    const disk = this.disk(location);
    this.inFlight.acquire(location);
    try {
      await disk.writev(chunks, lengthBytes, this.#position(location, offsetInExtent));
    } finally {
      this.inFlight.release(location);
    }
  }

  /** Write zero bytes over [offsetInExtent, +lengthBytes) of an extent. */
  async writeZeroes(location: number, offsetInExtent: number, lengthBytes: number): Promise<void> {
    const disk = this.disk(location);
    const start = this.#position(location, offsetInExtent);
    const chunks: Promise<void>[] = [];
    this.inFlight.acquire(location);
    try {
      // At most extentSize / 1 MiB (<= 64) chunks, issued together.
      for (let done = 0; done < lengthBytes; done += ZERO_CHUNK_BYTES) {
        chunks.push(disk.write(ZERO_CHUNK, 0, Math.min(ZERO_CHUNK_BYTES, lengthBytes - done), start + done));
      }
      await settleAll(chunks);
    } finally {
      this.inFlight.release(location);
    }
  }

  disk(location: number): Disk {
    const disk = this.#disks.get(locationDiskIndex(location));
    if (disk === undefined) {
      throw new PlinthError('INTERNAL', `extent location ${location} names a disk that is not open`, { location });
    }
    return disk;
  }

  #position(location: number, offsetInExtent: number): number {
    return locationExtentIndex(location) * this.extentSizeBytes + offsetInExtent;
  }
}

/**
 * Wait for every promise, then rethrow the first failure. Unlike
 * Promise.all, nothing is still running on the disk when this settles, so
 * callers can release what the operations were using.
 */
export async function settleAll(promises: readonly Promise<void>[]): Promise<void> {
  const results = await Promise.allSettled(promises);
  for (const result of results) {
    if (result.status === 'rejected') {
      const reason: unknown = result.reason;
      throw reason;
    }
  }
}
