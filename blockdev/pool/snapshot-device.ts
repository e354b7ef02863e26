import { PlinthError } from '../../common/plinth-error.js';
import type { BlockCapabilities, ExtentStatus } from '../block-device.js';
import { assertInRange } from '../range.js';
import { type ExtentIo, settleAll } from './extent-io.js';
import { type ExtentMap, extentMapStatus } from './extent-map.js';
import type { SnapshotStore } from './pool-types.js';
import { VOLUME_BLOCK_SIZE } from './volume-store.js';

/**
 * A snapshot opened for reading (issue 8): a read-only BlockDevice over the
 * snapshot's immutable extent map. Its extents are shared with at least the
 * snapshot itself, so nothing writes them in place while it is open
 * (copy-on-write, docs/snapshots.md) and reads need no coordination with
 * the volume's writers. Writes fail with READ_ONLY (NBD proto.md: a server
 * that advertises NBD_FLAG_READ_ONLY answers writes with EPERM).
 */

export const SNAPSHOT_CAPABILITIES: BlockCapabilities = {
  readOnly: true,
  fua: false,
  trim: false,
  writeZeroes: false,
  fastZero: false,
  blockStatus: true,
  multiConn: true,
};

export interface PoolSnapshotStoreOptions {
  readonly volumeId: string;
  readonly snapshotId: string;
  readonly sizeBytes: number;
  readonly extents: ExtentMap;
  readonly onClosed: (device: PoolSnapshotStore) => void;
}

export class PoolSnapshotStore implements SnapshotStore {
  readonly volumeId: string;
  readonly snapshotId: string;
  readonly sizeBytes: number;
  readonly capabilities = SNAPSHOT_CAPABILITIES;
  readonly blockSize = VOLUME_BLOCK_SIZE;
  readonly #extents: ExtentMap;
  readonly #io: ExtentIo;
  readonly #onClosed: (device: PoolSnapshotStore) => void;
  #activeReads = 0;
  #drained: (() => void) | null = null;
  #closing: Promise<void> | null = null;

  constructor(options: PoolSnapshotStoreOptions, io: ExtentIo) {
    this.volumeId = options.volumeId;
    this.snapshotId = options.snapshotId;
    this.sizeBytes = options.sizeBytes;
    this.#extents = options.extents;
    this.#onClosed = options.onClosed;
    this.#io = io;
  }

  get closed(): boolean {
    return this.#closing !== null;
  }

  async read(offset: number, target: Buffer): Promise<void> {
    assertInRange(offset, target.length, this.sizeBytes);
    this.#assertOpen();
    this.#activeReads += 1;
    try {
      const extentSize = this.#io.extentSizeBytes;
      const end = offset + target.length;
      const pieces: Promise<void>[] = [];
      for (let position = offset; position < end; ) {
        const logical = Math.floor(position / extentSize);
        const pieceEnd = Math.min(end, (logical + 1) * extentSize);
        const location = this.#extents.get(logical);
        if (location === undefined) {
          target.fill(0, position - offset, pieceEnd - offset);
        } else {
          pieces.push(this.#io.read(location, position - logical * extentSize, target, position - offset, pieceEnd - position));
        }
        position = pieceEnd;
      }
      await settleAll(pieces);
    } finally {
      this.#activeReads -= 1;
      if (this.#activeReads === 0 && this.#drained !== null) {
        this.#drained();
        this.#drained = null;
      }
    }
  }

  /** BlockDevice.readInline: one extent, disk allows inline I/O. */
  readInline(offset: number, target: Buffer): boolean {
    assertInRange(offset, target.length, this.sizeBytes);
    this.#assertOpen();
    const extentSize = this.#io.extentSizeBytes;
    const logical = Math.floor(offset / extentSize);
    const offsetInExtent = offset - logical * extentSize;
    if (target.length === 0 || offsetInExtent + target.length > extentSize) {
      return false;
    }
    const location = this.#extents.get(logical);
    if (location === undefined) {
      target.fill(0);
      return true;
    }
    return this.#io.tryReadInline(location, offsetInExtent, target, 0, target.length);
  }

  write(): Promise<void> {
    return this.#readOnly('write');
  }

  trim(): Promise<void> {
    return this.#readOnly('trim');
  }

  writeZeroes(): Promise<void> {
    return this.#readOnly('writeZeroes');
  }

  /** Nothing is ever written through a snapshot: nothing to make durable. */
  async flush(): Promise<void> {
    this.#assertOpen();
  }

  async blockStatus(offset: number, lengthBytes: number): Promise<ExtentStatus[]> {
    assertInRange(offset, lengthBytes, this.sizeBytes);
    this.#assertOpen();
    return extentMapStatus(this.#extents, offset, lengthBytes, this.#io.extentSizeBytes);
  }

  /** Stop accepting reads and wait for those running. Idempotent. */
  close(): Promise<void> {
    if (this.#closing === null) {
      this.#closing = this.#closeOnce();
    }
    return this.#closing;
  }

  async #closeOnce(): Promise<void> {
    try {
      if (this.#activeReads > 0) {
        await new Promise<void>((resolve) => {
          this.#drained = resolve;
        });
      }
    } finally {
      this.#onClosed(this);
    }
  }

  #assertOpen(): void {
    if (this.#closing !== null) {
      throw new PlinthError('SHUTTING_DOWN', `snapshot ${this.volumeId}@${this.snapshotId} is closed`, {
        volumeId: this.volumeId,
        snapshotId: this.snapshotId,
      });
    }
  }

  async #readOnly(operation: string): Promise<void> {
    this.#assertOpen();
    throw new PlinthError('READ_ONLY', `snapshot ${this.volumeId}@${this.snapshotId} is read-only: ${operation} refused`, {
      volumeId: this.volumeId,
      snapshotId: this.snapshotId,
      operation,
    });
  }
}
