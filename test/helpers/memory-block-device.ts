import { PlinthError } from '../../common/plinth-error.js';
import type {
  BlockCapabilities,
  BlockDevice,
  BlockSizeHints,
  ExtentStatus,
  TrimOptions,
  WriteOptions,
  ZeroOptions,
} from '../../blockdev/block-device.js';
import { assertInRange } from '../../blockdev/range.js';

/**
 * A sparse in-memory BlockDevice for tests: data lives in a Map of fixed
 * chunks (64 KiB by default), missing chunks read as zeroes and report as
 * holes, trim and (hole-punching) write-zeroes free whole chunks. It checks
 * ranges like a real device (OUT_OF_RANGE), refuses writes when read-only,
 * counts calls, and can be told to fail the next call of an operation.
 */

export type MemoryDeviceOperation = 'read' | 'write' | 'flush' | 'trim' | 'writeZeroes' | 'blockStatus';

export interface MemoryBlockDeviceOptions {
  readonly sizeBytes: number;
  readonly capabilities?: Partial<BlockCapabilities>;
  readonly blockSize?: Partial<BlockSizeHints>;
  readonly chunkBytes?: number;
}

export interface MemoryDeviceStats {
  reads: number;
  writes: number;
  fuaWrites: number;
  flushes: number;
  trims: number;
  writeZeroes: number;
  blockStatusCalls: number;
}

const DEFAULT_CAPABILITIES: BlockCapabilities = {
  readOnly: false,
  fua: true,
  trim: true,
  writeZeroes: true,
  fastZero: true,
  blockStatus: true,
  multiConn: true,
};

export class MemoryBlockDevice implements BlockDevice {
  readonly sizeBytes: number;
  readonly capabilities: BlockCapabilities;
  readonly blockSize: BlockSizeHints;
  readonly stats: MemoryDeviceStats = {
    reads: 0,
    writes: 0,
    fuaWrites: 0,
    flushes: 0,
    trims: 0,
    writeZeroes: 0,
    blockStatusCalls: 0,
  };
  private readonly chunkBytes: number;
  private readonly chunks = new Map<number, Buffer>();
  private readonly failures = new Map<MemoryDeviceOperation, Error>();

  constructor(options: MemoryBlockDeviceOptions) {
    this.sizeBytes = options.sizeBytes;
    this.chunkBytes = options.chunkBytes ?? 64 * 1024;
    this.capabilities = { ...DEFAULT_CAPABILITIES, ...options.capabilities };
    this.blockSize = {
      minimumBytes: 1,
      preferredBytes: 4096,
      maximumBytes: 32 * 1024 * 1024,
      ...options.blockSize,
    };
  }

  /** Make the next call of `operation` throw `error` without touching data. */
  failNext(operation: MemoryDeviceOperation, error: Error): void {
    this.failures.set(operation, error);
  }

  allocatedChunkCount(): number {
    return this.chunks.size;
  }

  async read(offset: number, target: Buffer): Promise<void> {
    this.takeFailure('read');
    assertInRange(offset, target.length, this.sizeBytes);
    this.stats.reads += 1;
    this.forEachChunk(offset, target.length, (index, within, length, cursor) => {
      const chunk = this.chunks.get(index);
      if (chunk === undefined) {
        target.fill(0, cursor, cursor + length);
      } else {
        chunk.copy(target, cursor, within, within + length);
      }
    });
  }

  async write(offset: number, data: Buffer, options: WriteOptions = {}): Promise<void> {
    this.takeFailure('write');
    this.assertWritable();
    assertInRange(offset, data.length, this.sizeBytes);
    this.stats.writes += 1;
    if (options.fua === true) {
      this.stats.fuaWrites += 1;
    }
    this.forEachChunk(offset, data.length, (index, within, length, cursor) => {
      data.copy(this.allocatedChunk(index), within, cursor, cursor + length);
    });
  }

  async flush(): Promise<void> {
    this.takeFailure('flush');
    this.stats.flushes += 1;
  }

  async trim(offset: number, lengthBytes: number, _options: TrimOptions = {}): Promise<void> {
    this.takeFailure('trim');
    this.assertWritable();
    assertInRange(offset, lengthBytes, this.sizeBytes);
    this.stats.trims += 1;
    this.punch(offset, lengthBytes);
  }

  async writeZeroes(offset: number, lengthBytes: number, options: ZeroOptions = {}): Promise<void> {
    this.takeFailure('writeZeroes');
    this.assertWritable();
    assertInRange(offset, lengthBytes, this.sizeBytes);
    // Punching holes is fast; writing real zero bytes (NO_HOLE) is not.
    if (options.fastZero === true && (options.noHole === true || !this.capabilities.fastZero)) {
      throw new PlinthError('NOT_SUPPORTED', 'fast zero is not possible with NO_HOLE', { offset, lengthBytes });
    }
    this.stats.writeZeroes += 1;
    if (options.noHole === true) {
      this.forEachChunk(offset, lengthBytes, (index, within, length) => {
        this.allocatedChunk(index).fill(0, within, within + length);
      });
    } else {
      this.punch(offset, lengthBytes);
    }
  }

  async blockStatus(offset: number, lengthBytes: number): Promise<ExtentStatus[]> {
    this.takeFailure('blockStatus');
    assertInRange(offset, lengthBytes, this.sizeBytes);
    this.stats.blockStatusCalls += 1;
    const runs: { lengthBytes: number; hole: boolean; zero: boolean }[] = [];
    this.forEachChunk(offset, lengthBytes, (index, _within, length) => {
      const hole = !this.chunks.has(index);
      const previous = runs[runs.length - 1];
      if (previous !== undefined && previous.hole === hole) {
        previous.lengthBytes += length;
      } else {
        runs.push({ lengthBytes: length, hole, zero: hole });
      }
    });
    return runs;
  }

  /** Zero a range: whole chunks are freed (holes), partial ones zero-filled. */
  private punch(offset: number, lengthBytes: number): void {
    this.forEachChunk(offset, lengthBytes, (index, within, length) => {
      if (within === 0 && length === this.chunkSizeOf(index)) {
        this.chunks.delete(index);
      } else {
        this.chunks.get(index)?.fill(0, within, within + length);
      }
    });
  }

  /** The last chunk is shorter when the size is not a multiple of the chunk size. */
  private chunkSizeOf(index: number): number {
    return Math.min(this.chunkBytes, this.sizeBytes - index * this.chunkBytes);
  }

  private allocatedChunk(index: number): Buffer {
    let chunk = this.chunks.get(index);
    if (chunk === undefined) {
      chunk = Buffer.alloc(this.chunkSizeOf(index));
      this.chunks.set(index, chunk);
    }
    return chunk;
  }

  /** Visit each chunk overlapping [offset, offset+length): (index, offset in chunk, length, offset in range). */
  private forEachChunk(
    offset: number,
    lengthBytes: number,
    visit: (index: number, within: number, length: number, cursor: number) => void,
  ): void {
    let cursor = 0;
    while (cursor < lengthBytes) {
      const position = offset + cursor;
      const index = Math.floor(position / this.chunkBytes);
      const within = position - index * this.chunkBytes;
      const length = Math.min(this.chunkBytes - within, lengthBytes - cursor);
      visit(index, within, length, cursor);
      cursor += length;
    }
  }

  private assertWritable(): void {
    if (this.capabilities.readOnly) {
      throw new PlinthError('READ_ONLY', 'device is read-only');
    }
  }

  private takeFailure(operation: MemoryDeviceOperation): void {
    const error = this.failures.get(operation);
    if (error !== undefined) {
      this.failures.delete(operation);
      throw error;
    }
  }
}
