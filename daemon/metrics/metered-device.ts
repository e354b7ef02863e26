import { performance } from 'node:perf_hooks';
import type { BlockCapabilities, BlockDevice, BlockSizeHints, ExtentStatus, TrimOptions, WriteOptions, ZeroOptions } from '../../blockdev/block-device.js';
import { OP_FLUSH, OP_READ, OP_TRIM, OP_WRITE, OP_ZERO, type VolumeIoStats } from './volume-io-stats.js';

/**
 * The BlockDevice that NBD and iSCSI are handed (volume-exports.ts), so both
 * protocols are measured the same way. It counts into plain numbers
 * (volume-io-stats.ts) and adds exactly one `.then` per asynchronous request
 * and no promise at all on the inline fast paths, which stay inline
 * (block-device.ts "readInline/writeInline"). Timestamps: performance.now(),
 * a monotonic double that costs less than process.hrtime.bigint().
 *
 * The inline methods exist only when the inner device has them: callers
 * test for their presence and must keep falling back to read()/write().
 */
export class MeteredDevice implements BlockDevice {
  readonly #inner: BlockDevice;
  readonly #stats: VolumeIoStats;
  readonly readInline?: (offset: number, target: Buffer) => boolean;
  readonly writeInline?: (offset: number, data: Buffer) => boolean;
  readonly writev?: (offset: number, chunks: readonly Buffer[], options?: WriteOptions) => Promise<void>;

  constructor(inner: BlockDevice, stats: VolumeIoStats) {
    this.#inner = inner;
    this.#stats = stats;
    if (inner.readInline !== undefined) this.readInline = (offset, target) => this.#readInline(offset, target);
    if (inner.writeInline !== undefined) this.writeInline = (offset, data) => this.#writeInline(offset, data);
    const innerWritev = inner.writev?.bind(inner);
    if (innerWritev !== undefined) {
      this.writev = (offset, chunks, options) => {
        const startMs = performance.now();
        let bytes = 0;
        for (const chunk of chunks) bytes += chunk.length;
        return this.#measure(OP_WRITE, startMs, bytes, innerWritev(offset, chunks, options));
      };
    }
  }

  // Getters, not copies: a grown volume's size shows through at once.
  get sizeBytes(): number {
    return this.#inner.sizeBytes;
  }

  get capabilities(): BlockCapabilities {
    return this.#inner.capabilities;
  }

  get blockSize(): BlockSizeHints {
    return this.#inner.blockSize;
  }

  read(offset: number, target: Buffer): Promise<void> {
    const startMs = performance.now();
    return this.#measure(OP_READ, startMs, target.length, this.#inner.read(offset, target));
  }

  write(offset: number, data: Buffer, options?: WriteOptions): Promise<void> {
    const startMs = performance.now();
    return this.#measure(OP_WRITE, startMs, data.length, this.#inner.write(offset, data, options));
  }

  flush(): Promise<void> {
    const startMs = performance.now();
    return this.#measure(OP_FLUSH, startMs, 0, this.#inner.flush());
  }

  trim(offset: number, lengthBytes: number, options?: TrimOptions): Promise<void> {
    const startMs = performance.now();
    return this.#measure(OP_TRIM, startMs, 0, this.#inner.trim(offset, lengthBytes, options));
  }

  writeZeroes(offset: number, lengthBytes: number, options?: ZeroOptions): Promise<void> {
    const startMs = performance.now();
    return this.#measure(OP_ZERO, startMs, 0, this.#inner.writeZeroes(offset, lengthBytes, options));
  }

  /** Metadata, not I/O: passed through unmeasured. */
  blockStatus(offset: number, lengthBytes: number): Promise<ExtentStatus[]> {
    return this.#inner.blockStatus(offset, lengthBytes);
  }

  #readInline(offset: number, target: Buffer): boolean {
    const startMs = performance.now();
    let done: boolean;
    try {
      done = this.#inner.readInline?.(offset, target) ?? false;
    } catch (err) {
      this.#stats.fail(OP_READ);
      throw err;
    }
    if (done) {
      this.#stats.readBytes += target.length;
      this.#stats.complete(OP_READ, performance.now() - startMs);
    }
    return done;
  }

  #writeInline(offset: number, data: Buffer): boolean {
    const startMs = performance.now();
    let done: boolean;
    try {
      done = this.#inner.writeInline?.(offset, data) ?? false;
    } catch (err) {
      this.#stats.fail(OP_WRITE);
      throw err;
    }
    if (done) {
      this.#stats.writtenBytes += data.length;
      this.#stats.complete(OP_WRITE, performance.now() - startMs);
    }
    return done;
  }

  /**
   * In-flight depth up now, down when `request` settles; `bytes` count as
   * read or written only once it succeeded; errors are counted, then passed on unchanged.
   */
  #measure(op: number, startMs: number, bytes: number, request: Promise<void>): Promise<void> {
    const stats = this.#stats;
    stats.inFlight += 1;
    return request.then(
      () => {
        stats.inFlight -= 1;
        if (op === OP_READ) stats.readBytes += bytes;
        else stats.writtenBytes += bytes;
        stats.complete(op, performance.now() - startMs);
      },
      (err: unknown) => {
        stats.inFlight -= 1;
        stats.fail(op);
        throw err;
      },
    );
  }
}
