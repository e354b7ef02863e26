import type { Logger } from 'pino';
import { isPlinthError, PlinthError } from '../../common/plinth-error.js';
import type {
  BlockCapabilities,
  BlockSizeHints,
  ExtentStatus,
  TrimOptions,
  WriteOptions,
  ZeroOptions,
} from '../block-device.js';
import { failpoints, hitFailpoint } from '../../common/failpoints/failpoints.js';
import { assertInRange } from '../range.js';
import type { Allocation, ExtentAllocator } from './extent-allocator.js';
import { type ExtentIo, settleAll } from './extent-io.js';
import { type ExtentMap, extentMapStatus } from './extent-map.js';
import type { ExtentRefcounts } from './extent-refcounts.js';
import { fillCopiedExtent } from './copy-on-write.js';
import type { MetadataStore } from './metadata-store.js';
import type { VolumeStore } from './pool-types.js';

/**
 * A thin volume on the pool: the BlockDevice the replica layer serves.
 *
 * Thin provisioning: a logical extent gets a physical one on its first write;
 * unmapped extents read as zeroes without touching a disk. A new mapping is
 * published (in memory, and queued for metadata) only after the extent holds
 * exactly what the volume should read: the written bytes, and zeroes
 * everywhere else unless the extent is known zero (extent-allocator.ts).
 * Concurrent writes to a logical extent that is being allocated wait for
 * that allocation and then write into the mapped extent.
 *
 * Copy-on-write (issue 8, docs/snapshots.md): an extent that a snapshot or
 * clone also maps (refcounts.isShared) is never written in place. The first
 * write, zero or partial trim into it allocates a fresh extent, fills it
 * (copy-on-write.ts) and remaps, registered in #allocating exactly like a
 * first allocation, so concurrent writers of that extent wait for it; a
 * whole-extent trim just drops this volume's reference.
 *
 * Durability (ARCHITECTURE invariant 5, NBD proto.md "Ordering of messages
 * and writes"): flush() is pool-wide: fdatasync every dirty disk, then write
 * the queued mapping changes with sync. FUA is a write followed by a flush.
 */

export const VOLUME_CAPABILITIES: BlockCapabilities = {
  readOnly: false,
  fua: true,
  trim: true,
  writeZeroes: true,
  fastZero: true,
  blockStatus: true,
  // flush() syncs every disk and the metadata, whoever calls it.
  multiConn: true,
};

export const VOLUME_BLOCK_SIZE: BlockSizeHints = {
  minimumBytes: 1,
  preferredBytes: 4096,
  maximumBytes: 32 * 1024 * 1024,
};


export interface VolumeStoreContext {
  readonly io: ExtentIo;
  readonly allocator: ExtentAllocator;
  readonly metadata: MetadataStore;
  /** References to physical extents from every volume, snapshot and clone of the pool. */
  readonly refcounts: ExtentRefcounts;
  /** Pool-wide flush: every disk, then the queued metadata. */
  flush(): Promise<void>;
  /** The metadata queue grew; the pool may start a background flush to keep it bounded. */
  noteMetadataQueued(): void;
  readonly logger: Logger;
}

export interface PoolVolumeStoreOptions {
  readonly volumeId: string;
  readonly sizeBytes: number;
  readonly extents: ExtentMap;
  readonly onClosed: (store: PoolVolumeStore) => void;
}

export class PoolVolumeStore implements VolumeStore {
  readonly volumeId: string;
  readonly capabilities = VOLUME_CAPABILITIES;
  readonly blockSize = VOLUME_BLOCK_SIZE;
  readonly #extents: ExtentMap;
  readonly #context: VolumeStoreContext;
  readonly #extentSizeBytes: number;
  readonly #onClosed: (store: PoolVolumeStore) => void;
  /** Logical extents being allocated: the promise settles once the mapping is published (or failed). */
  readonly #allocating = new Map<number, Promise<void>>();
  #sizeBytes: number;
  #activeOperations = 0;
  #closing: Promise<void> | null = null;
  #drained: (() => void) | null = null;

  constructor(options: PoolVolumeStoreOptions, context: VolumeStoreContext) {
    this.volumeId = options.volumeId;
    this.#sizeBytes = options.sizeBytes;
    this.#extents = options.extents;
    this.#onClosed = options.onClosed;
    this.#context = context;
    this.#extentSizeBytes = context.io.extentSizeBytes;
  }

  get sizeBytes(): number {
    return this.#sizeBytes;
  }

  /** Grow only; the pool persists the record first. */
  setSizeBytes(sizeBytes: number): void {
    this.#sizeBytes = Math.max(this.#sizeBytes, sizeBytes);
  }

  allocatedBytes(): number {
    return this.#extents.allocatedExtents * this.#extentSizeBytes;
  }

  async read(offset: number, target: Buffer): Promise<void> {
    assertInRange(offset, target.length, this.#sizeBytes);
    this.#enter();
    try {
      if (failpoints.armed) await hitFailpoint('pool.read', this.volumeId);
      const extentSize = this.#extentSizeBytes;
      const firstExtent = Math.floor(offset / extentSize);
      const end = offset + target.length;
      if (target.length === 0) {
        return;
      }
      if (end <= (firstExtent + 1) * extentSize) {
        // Fast path: the whole request inside one extent.
        await this.#readPiece(firstExtent, offset - firstExtent * extentSize, target, 0, target.length);
        return;
      }
      await this.#eachExtentPiece(offset, target.length, (logical, inExtent, inRequest, pieceBytes) =>
        this.#readPiece(logical, inExtent, target, inRequest, pieceBytes),
      );
    } finally {
      this.#leave();
    }
  }

  async write(offset: number, data: Buffer, options?: WriteOptions): Promise<void> {
    assertInRange(offset, data.length, this.#sizeBytes);
    this.#enter();
    try {
      if (failpoints.armed) await hitFailpoint('pool.write', this.volumeId);
      const extentSize = this.#extentSizeBytes;
      const firstExtent = Math.floor(offset / extentSize);
      const end = offset + data.length;
      if (data.length > 0 && end <= (firstExtent + 1) * extentSize) {
        await this.#writePiece(firstExtent, offset - firstExtent * extentSize, data, 0, data.length);
      } else {
        await this.#eachExtentPiece(offset, data.length, (logical, inExtent, inRequest, pieceBytes) =>
          this.#writePiece(logical, inExtent, data, inRequest, pieceBytes),
        );
      }
      if (options?.fua === true) {
        await this.#context.flush();
      }
    } finally {
      this.#leave();
    }
  }

  /**
   * BlockDevice.readInline: a request inside one extent whose disk allows
   * inline I/O completes here, without the four promise layers of read()
   * (perf round 2: qd1 rows spent ~18 µs per request in the JS path).
   */
  readInline(offset: number, target: Buffer): boolean {
    assertInRange(offset, target.length, this.#sizeBytes);
    this.#assertOpen();
    if (failpoints.armed) return false; // armed: take read(), where pool.read sits
    const logical = Math.floor(offset / this.#extentSizeBytes);
    const offsetInExtent = offset - logical * this.#extentSizeBytes;
    if (target.length === 0 || offsetInExtent + target.length > this.#extentSizeBytes) {
      return false;
    }
    const location = this.#extents.get(logical);
    if (location === undefined) {
      target.fill(0); // unwritten (or allocation in progress): zeroes, as read() does
      return true;
    }
    return this.#context.io.tryReadInline(location, offsetInExtent, target, 0, target.length);
  }

  /** BlockDevice.writeInline: only into an extent that is already mapped; allocation stays asynchronous. */
  writeInline(offset: number, data: Buffer): boolean {
    assertInRange(offset, data.length, this.#sizeBytes);
    this.#assertOpen();
    if (failpoints.armed) return false; // armed: take write(), where pool.write sits
    const logical = Math.floor(offset / this.#extentSizeBytes);
    const offsetInExtent = offset - logical * this.#extentSizeBytes;
    if (data.length === 0 || offsetInExtent + data.length > this.#extentSizeBytes) {
      return false;
    }
    const location = this.#extents.get(logical);
    // A shared extent takes write()'s copy-on-write path.
    return location !== undefined && this.#writableInPlace(logical, location) && this.#context.io.tryWriteInline(location, offsetInExtent, data, 0, data.length);
  }

  /**
   * BlockDevice.writev: the chunks go to the disk as one pwritev per extent
   * piece (perf round 2: assembling a 1 MiB payload from its ~16 socket
   * chunks was ~12 % of the loop at 1m-write-qd8). Unmapped pieces are
   * assembled and take write()'s allocation path (first writes only).
   */
  async writev(offset: number, chunks: readonly Buffer[], options?: WriteOptions): Promise<void> {
    let lengthBytes = 0;
    for (const chunk of chunks) {
      lengthBytes += chunk.length;
    }
    assertInRange(offset, lengthBytes, this.#sizeBytes);
    this.#enter();
    try {
      if (failpoints.armed) await hitFailpoint('pool.write', this.volumeId);
      await this.#eachExtentPiece(offset, lengthBytes, (logical, inExtent, inRequest, pieceBytes) =>
        this.#writevPiece(logical, inExtent, sliceChunks(chunks, inRequest, pieceBytes), pieceBytes),
      );
      if (options?.fua === true) {
        await this.#context.flush();
      }
    } finally {
      this.#leave();
    }
  }

  async flush(): Promise<void> {
    this.#enter();
    try {
      await this.#context.flush();
    } finally {
      this.#leave();
    }
  }

  /** TRIM frees whole extents and zeroes partial edges, so trimmed ranges read as zeroes (invariant 5). */
  async trim(offset: number, lengthBytes: number, options?: TrimOptions): Promise<void> {
    assertInRange(offset, lengthBytes, this.#sizeBytes);
    this.#enter();
    try {
      if (failpoints.armed) await hitFailpoint('pool.write', this.volumeId);
      await this.#discard(offset, lengthBytes);
      if (options?.fua === true) {
        await this.#context.flush();
      }
    } finally {
      this.#leave();
    }
  }

  /**
   * NBD proto.md NBD_CMD_WRITE_ZEROES. Without NO_HOLE it is a TRIM (whole
   * extents freed, edges zeroed). With NO_HOLE every extent of the range
   * stays or becomes allocated and the range is written with zero bytes.
   *
   * FAST_ZERO: freeing whole extents is metadata-only, and the partial edges
   * cost at most two sub-extent writes, which we accept as fast. NO_HOLE
   * means writing every byte, which is exactly what FAST_ZERO asks us not to
   * do slowly, so fastZero + noHole fails with NOT_SUPPORTED.
   */
  async writeZeroes(offset: number, lengthBytes: number, options?: ZeroOptions): Promise<void> {
    assertInRange(offset, lengthBytes, this.#sizeBytes);
    const noHole = options?.noHole === true;
    if (noHole && options?.fastZero === true) {
      throw new PlinthError('NOT_SUPPORTED', 'writeZeroes with noHole writes every byte; it is not faster than writing zeroes', {
        offset,
        lengthBytes,
      });
    }
    this.#enter();
    try {
      if (failpoints.armed) await hitFailpoint('pool.write', this.volumeId);
      await (noHole ? this.#zeroKeepingAllocated(offset, lengthBytes) : this.#discard(offset, lengthBytes));
      if (options?.fua === true) {
        await this.#context.flush();
      }
    } finally {
      this.#leave();
    }
  }

  /** Allocated extents → data; unallocated → hole reading as zeroes. Adjacent equal runs are merged. */
  async blockStatus(offset: number, lengthBytes: number): Promise<ExtentStatus[]> {
    assertInRange(offset, lengthBytes, this.#sizeBytes);
    this.#enter();
    try {
      return extentMapStatus(this.#extents, offset, lengthBytes, this.#extentSizeBytes);
    } finally {
      this.#leave();
    }
  }

  /** Stop accepting I/O, wait for what is running, flush. Idempotent. */
  close(): Promise<void> {
    if (this.#closing === null) {
      this.#closing = this.#closeOnce();
    }
    return this.#closing;
  }

  get closed(): boolean {
    return this.#closing !== null;
  }

  async #closeOnce(): Promise<void> {
    try {
      if (this.#activeOperations > 0) {
        await new Promise<void>((resolve) => {
          this.#drained = resolve;
        });
      }
      await this.#context.flush();
    } finally {
      this.#onClosed(this);
    }
  }

  #assertOpen(): void {
    if (this.#closing !== null) {
      throw new PlinthError('SHUTTING_DOWN', `volume ${this.volumeId} is closed`, { volumeId: this.volumeId });
    }
  }

  #enter(): void {
    if (this.#closing !== null) {
      throw new PlinthError('SHUTTING_DOWN', `volume ${this.volumeId} is closed`, { volumeId: this.volumeId });
    }
    this.#activeOperations += 1;
  }

  #leave(): void {
    this.#activeOperations -= 1;
    if (this.#activeOperations === 0 && this.#drained !== null) {
      const drained = this.#drained;
      this.#drained = null;
      drained();
    }
  }

  #readPiece(logical: number, offsetInExtent: number, target: Buffer, targetOffset: number, lengthBytes: number): Promise<void> {
    const location = this.#extents.get(logical);
    if (location === undefined) {
      // Unwritten (or allocation still in progress): zeroes, no disk access.
      target.fill(0, targetOffset, targetOffset + lengthBytes);
      return Promise.resolve();
    }
    return this.#context.io.read(location, offsetInExtent, target, targetOffset, lengthBytes);
  }

  #writePiece(logical: number, offsetInExtent: number, source: Buffer, sourceOffset: number, lengthBytes: number): Promise<void> {
    const location = this.#extents.get(logical);
    if (location !== undefined && this.#writableInPlace(logical, location)) {
      return this.#context.io.write(location, offsetInExtent, source, sourceOffset, lengthBytes);
    }
    const allocating = this.#allocating.get(logical);
    if (allocating !== undefined) {
      const retry = (): Promise<void> => this.#writePiece(logical, offsetInExtent, source, sourceOffset, lengthBytes);
      return allocating.then(retry, retry);
    }
    return this.#allocate(logical, offsetInExtent, source, sourceOffset, lengthBytes, location ?? null);
  }

  #writevPiece(logical: number, offsetInExtent: number, views: readonly Buffer[], lengthBytes: number): Promise<void> {
    const location = this.#extents.get(logical);
    if (location !== undefined && this.#writableInPlace(logical, location)) {
      return this.#context.io.writev(location, offsetInExtent, views, lengthBytes);
    }
    const allocating = this.#allocating.get(logical);
    if (allocating !== undefined) {
      const retry = (): Promise<void> => this.#writevPiece(logical, offsetInExtent, views, lengthBytes);
      return allocating.then(retry, retry);
    }
    return this.#allocate(logical, offsetInExtent, Buffer.concat(views, lengthBytes), 0, lengthBytes, location ?? null);
  }

  /**
   * Map a physical extent to `logical`, with `source` bytes (or zeroes when
   * source is null) at [offsetInExtent, +lengthBytes) and zeroes elsewhere,
   * or, when `sharedLocation` is given (copy-on-write), that extent's bytes
   * elsewhere. Registered synchronously so concurrent writers of the same
   * extent wait.
   */
  #allocate(logical: number, offsetInExtent: number, source: Buffer | null, sourceOffset: number, lengthBytes: number, sharedLocation: number | null = null): Promise<void> {
    const allocation =
      sharedLocation === null
        ? this.#allocateAndFill(logical, offsetInExtent, source, sourceOffset, lengthBytes)
        : this.#copyOnWrite(logical, sharedLocation, offsetInExtent, source, sourceOffset, lengthBytes);
    this.#allocating.set(logical, allocation);
    const forget = (): void => {
      this.#allocating.delete(logical);
    };
    allocation.then(forget, forget);
    return allocation;
  }

  async #allocateAndFill(logical: number, offsetInExtent: number, source: Buffer | null, sourceOffset: number, lengthBytes: number): Promise<void> {
    const { location, knownZero } = await this.#takeExtent();
    const io = this.#context.io;
    const writes: Promise<void>[] = [];
    const fillEnd = offsetInExtent + lengthBytes;
    if (!knownZero) {
      // A reused extent may hold another volume's bytes: zero what the write does not cover.
      if (source === null) {
        writes.push(io.writeZeroes(location, 0, this.#extentSizeBytes));
      } else {
        if (offsetInExtent > 0) writes.push(io.writeZeroes(location, 0, offsetInExtent));
        if (fillEnd < this.#extentSizeBytes) writes.push(io.writeZeroes(location, fillEnd, this.#extentSizeBytes - fillEnd));
      }
    }
    if (source !== null) {
      writes.push(io.write(location, offsetInExtent, source, sourceOffset, lengthBytes));
    }
    try {
      await settleAll(writes);
    } catch (err) {
      this.#context.allocator.returnUnused(location);
      throw err;
    }
    this.#extents.set(logical, location);
    this.#context.metadata.queueMapping(this.volumeId, logical, location);
    this.#context.noteMetadataQueued();
  }

  async #copyOnWrite(logical: number, sharedLocation: number, offsetInExtent: number, source: Buffer | null, sourceOffset: number, lengthBytes: number): Promise<void> {
    const { location } = await this.#takeExtent();
    const context = this.#context;
    try {
      await fillCopiedExtent(context.io, {
        extentSizeBytes: this.#extentSizeBytes,
        fromLocation: sharedLocation,
        toLocation: location,
        offsetInExtent,
        lengthBytes,
        source,
        sourceOffset,
      });
    } catch (err) {
      context.allocator.returnUnused(location);
      throw err;
    }
    this.#extents.set(logical, location);
    context.metadata.queueMapping(this.volumeId, logical, location);
    // The durable map still names sharedLocation until the next flush: a free stays pending until then (pool-flusher.ts).
    if (context.refcounts.dropReference(sharedLocation)) {
      context.allocator.free(sharedLocation);
    }
    context.noteMetadataQueued();
  }

  /** Allocate; when the pool is full but frees await durability, flush once so they become reusable. */
  async #takeExtent(): Promise<Allocation> {
    const allocator = this.#context.allocator;
    try {
      return await allocator.allocate();
    } catch (err) {
      if (!isPlinthError(err, 'NO_SPACE') || allocator.pendingFreeCount === 0) {
        throw err;
      }
    }
    await this.#context.flush();
    try {
      return await allocator.allocate();
    } catch (err) {
      throw isPlinthError(err, 'NO_SPACE')
        ? new PlinthError('NO_SPACE', `volume ${this.volumeId}: pool is full, cannot allocate an extent`, { volumeId: this.volumeId }, { cause: err })
        : err;
    }
  }

  /** Free whole extents of the range, zero the partial edges of mapped ones. */
  /**
   * Split [offset, +lengthBytes) at extent boundaries and run `piece` on each
   * part concurrently: (logical extent, offset in it, offset in the request, length).
   */
  #eachExtentPiece(
    offset: number,
    lengthBytes: number,
    piece: (logical: number, inExtent: number, inRequest: number, pieceBytes: number) => Promise<void>,
  ): Promise<void> {
    const extentSize = this.#extentSizeBytes;
    const end = offset + lengthBytes;
    const pieces: Promise<void>[] = [];
    for (let position = offset; position < end; ) {
      const logical = Math.floor(position / extentSize);
      const pieceEnd = Math.min(end, (logical + 1) * extentSize);
      pieces.push(piece(logical, position - logical * extentSize, position - offset, pieceEnd - position));
      position = pieceEnd;
    }
    return settleAll(pieces);
  }

  async #discard(offset: number, lengthBytes: number): Promise<void> {
    const extentSize = this.#extentSizeBytes;
    const end = offset + lengthBytes;
    const edgeWrites: Promise<void>[] = [];
    for (let position = offset; position < end; ) {
      const logical = Math.floor(position / extentSize);
      const extentStart = logical * extentSize;
      const pieceEnd = Math.min(end, extentStart + extentSize);
      while (this.#allocating.has(logical)) {
        await this.#allocationSettled(logical);
      }
      if (position === extentStart && pieceEnd === extentStart + extentSize) {
        this.#unmap(logical);
      } else {
        const location = this.#extents.get(logical);
        if (location !== undefined && this.#context.refcounts.isShared(location)) {
          edgeWrites.push(this.#allocate(logical, position - extentStart, null, 0, pieceEnd - position, location));
        } else if (location !== undefined) {
          edgeWrites.push(this.#context.io.writeZeroes(location, position - extentStart, pieceEnd - position));
        }
      }
      position = pieceEnd;
    }
    await settleAll(edgeWrites);
  }

  /** NO_HOLE zeroing: allocate what is unmapped (zeroed unless known zero), write zeroes over what is mapped. */
  async #zeroKeepingAllocated(offset: number, lengthBytes: number): Promise<void> {
    const extentSize = this.#extentSizeBytes;
    const end = offset + lengthBytes;
    const pieces: Promise<void>[] = [];
    for (let position = offset; position < end; ) {
      const logical = Math.floor(position / extentSize);
      const extentStart = logical * extentSize;
      const pieceEnd = Math.min(end, extentStart + extentSize);
      pieces.push(this.#zeroPiece(logical, position - extentStart, pieceEnd - position));
      position = pieceEnd;
    }
    await settleAll(pieces);
  }

  async #zeroPiece(logical: number, offsetInExtent: number, lengthBytes: number): Promise<void> {
    while (this.#allocating.has(logical)) {
      await this.#allocationSettled(logical);
    }
    const location = this.#extents.get(logical);
    if (location !== undefined && !this.#context.refcounts.isShared(location)) {
      await this.#context.io.writeZeroes(location, offsetInExtent, lengthBytes);
      return;
    }
    await this.#allocate(logical, offsetInExtent, null, 0, lengthBytes, location ?? null);
  }

  /**
   * A mapped extent that is not shared and has no copy-on-write running (that copy could
   * miss an in-place write if the snapshot was deleted meanwhile and the
   * extent stopped being shared).
   */
  #writableInPlace(logical: number, location: number): boolean {
    return !this.#context.refcounts.isShared(location) && (this.#allocating.size === 0 || !this.#allocating.has(logical));
  }

  #unmap(logical: number): void {
    const location = this.#extents.get(logical);
    if (location === undefined) {
      return;
    }
    this.#extents.delete(logical);
    this.#context.metadata.queueUnmapping(this.volumeId, logical);
    // A shared extent only loses this volume's reference; snapshots and clones keep reading it.
    if (this.#context.refcounts.dropReference(location)) {
      this.#context.allocator.free(location);
    }
    this.#context.noteMetadataQueued();
  }

  async #allocationSettled(logical: number): Promise<void> {
    const allocating = this.#allocating.get(logical);
    if (allocating === undefined) {
      return;
    }
    try {
      await allocating;
    } catch (err) {
      // The writer that started the allocation gets the error; here it only means "not mapped".
      this.#context.logger.debug({ err, volumeId: this.volumeId, logical }, 'allocation awaited by a discard failed');
    }
  }
}

/** Views (no copy) of bytes [start, start + lengthBytes) of the concatenation of `chunks`. */
export function sliceChunks(chunks: readonly Buffer[], start: number, lengthBytes: number): Buffer[] {
  const views: Buffer[] = [];
  const end = start + lengthBytes;
  let chunkStart = 0;
  for (const chunk of chunks) {
    const chunkEnd = chunkStart + chunk.length;
    if (chunkEnd > start && chunkStart < end) {
      views.push(chunk.subarray(Math.max(start, chunkStart) - chunkStart, Math.min(end, chunkEnd) - chunkStart));
    }
    if (chunkEnd >= end) {
      break;
    }
    chunkStart = chunkEnd;
  }
  return views;
}
