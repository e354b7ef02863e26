import { PlinthError } from '../../common/plinth-error.js';
import type { BlockCapabilities, BlockDevice, BlockSizeHints, ExtentStatus } from '../../blockdev/block-device.js';
import { DEFAULT_MAX_IO_BYTES } from '../../blockdev/replica/replica-protocol.js';
import { assertInRange } from '../../blockdev/range.js';
import { SNAPSHOT_CAPABILITIES } from '../../blockdev/pool/snapshot-device.js';

/**
 * The read-only BlockDevice behind a `volume@snapshot` export (issue 8;
 * ARCHITECTURE "NBD"). Reads come from this node's pool when it holds the
 * snapshot, otherwise over SNAPSHOT_READ from a holder (`readAt` hides
 * which). Writes, trims and zeroes are refused with READ_ONLY, which NBD
 * answers with EPERM (proto.md: "NBD_EPERM ... a write ... on a read-only
 * export"); the export also advertises NBD_FLAG_READ_ONLY, so clients
 * normally never try.
 */

/** A pool snapshot's capabilities without block status: a remote holder may answer the reads. */
export const SNAPSHOT_EXPORT_CAPABILITIES: BlockCapabilities = { ...SNAPSHOT_CAPABILITIES, blockStatus: false };

/** Reads are bounded by the replica protocol's frame (a remote holder answers them). */
export const SNAPSHOT_BLOCK_SIZE: BlockSizeHints = { minimumBytes: 1, preferredBytes: 4096, maximumBytes: DEFAULT_MAX_IO_BYTES };

export type SnapshotReadAt = (offset: number, target: Buffer) => Promise<void>;

export class SnapshotExportDevice implements BlockDevice {
  readonly sizeBytes: number;
  readonly capabilities = SNAPSHOT_EXPORT_CAPABILITIES;
  readonly blockSize = SNAPSHOT_BLOCK_SIZE;
  readonly #name: string;
  readonly #readAt: SnapshotReadAt;

  constructor(options: { readonly exportName: string; readonly sizeBytes: number }, readAt: SnapshotReadAt) {
    this.sizeBytes = options.sizeBytes;
    this.#name = options.exportName;
    this.#readAt = readAt;
  }

  async read(offset: number, target: Buffer): Promise<void> {
    assertInRange(offset, target.length, this.sizeBytes);
    // Larger reads than a frame carries are split (the NBD server bounds requests by blockSize anyway).
    for (let done = 0; done < target.length; done += DEFAULT_MAX_IO_BYTES) {
      const end = Math.min(target.length, done + DEFAULT_MAX_IO_BYTES);
      await this.#readAt(offset + done, target.subarray(done, end));
    }
  }

  async write(): Promise<void> {
    throw this.#readOnly('write');
  }

  async trim(): Promise<void> {
    throw this.#readOnly('trim');
  }

  async writeZeroes(): Promise<void> {
    throw this.#readOnly('write zeroes');
  }

  /** Nothing is ever written: nothing to make durable. */
  async flush(): Promise<void> {}

  async blockStatus(offset: number, lengthBytes: number): Promise<ExtentStatus[]> {
    assertInRange(offset, lengthBytes, this.sizeBytes);
    return [{ lengthBytes, hole: false, zero: false }];
  }

  #readOnly(what: string): PlinthError {
    return new PlinthError('READ_ONLY', `${what} refused: ${this.#name} is a read-only snapshot export`, { export: this.#name });
  }
}
