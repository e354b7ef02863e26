import type { Logger } from 'pino';
import { isPlinthError, PlinthError } from '../../common/plinth-error.js';
import type { Pool, SnapshotStore } from '../pool/pool-types.js';
import { assertInRange } from '../range.js';
import { Opcode, ReplicaProtocolError, type ReplicaRequest } from './replica-protocol.js';
import { decodeSnapshotReference } from './snapshot-payloads.js';

/**
 * The replica server's snapshot ops (issue 8, protocol version 3;
 * docs/snapshots.md "Replica protocol"): thin calls into the Pool, kept
 * apart from the WRITE/READ path of replica-service.ts. The service fences
 * each request first (invariant 3) and hands it here.
 *
 * Read handles: one pool SnapshotStore per snapshot, opened on first read
 * and kept (reads of an immutable snapshot need no per-request open); they
 * are closed before the snapshot or its volume is deleted, since the pool
 * refuses to delete an open snapshot (SNAPSHOT_OPEN).
 */

export interface SnapshotOpsOptions {
  readonly maxIoBytes: number;
  /** Read handles kept open at once; the oldest is closed past it. */
  readonly maxOpenSnapshots?: number;
}

export interface SnapshotOpsModules {
  readonly pool: Pool;
  readonly logger: Logger;
}

/** Lets the volume's store go (REVERT needs the volume closed in the pool): waits for its requests, closes it. */
export type ReleaseVolume = (volumeId: string) => Promise<void>;

export class SnapshotOps {
  readonly #options: SnapshotOpsOptions;
  readonly #modules: SnapshotOpsModules;
  /** `${volumeId}/${snapshotId}` → its read handle; Map order is open order (oldest first). */
  readonly #handles = new Map<string, Promise<SnapshotStore>>();

  constructor(options: SnapshotOpsOptions, modules: SnapshotOpsModules) {
    this.#options = options;
    this.#modules = modules;
  }

  /** Run one fenced snapshot request; the reply payload (SNAPSHOT_READ: the data, else empty). */
  async execute(request: ReplicaRequest, releaseVolume: ReleaseVolume): Promise<Buffer> {
    const reference = decodeSnapshotReference(request.opcode, request.payload);
    if (reference instanceof ReplicaProtocolError) throw reference;
    const { volumeId } = request;
    const { snapshotId } = reference;
    const { pool, logger } = this.#modules;
    switch (request.opcode) {
      case Opcode.SNAPSHOT_CREATE:
        await pool.createSnapshot(volumeId, snapshotId);
        logger.info({ volumeId, snapshotId, generation: request.generation }, 'snapshot taken');
        return Buffer.alloc(0);
      case Opcode.SNAPSHOT_DELETE:
        await this.deleteSnapshot(volumeId, snapshotId);
        return Buffer.alloc(0);
      case Opcode.SNAPSHOT_READ: {
        const target = Buffer.allocUnsafe(request.lengthBytes);
        await this.read(volumeId, snapshotId, request.offset, target);
        return target;
      }
      case Opcode.REVERT:
        await releaseVolume(volumeId);
        await pool.revertVolume(volumeId, snapshotId);
        logger.info({ volumeId, snapshotId, generation: request.generation }, 'volume reverted to a snapshot');
        return Buffer.alloc(0);
      case Opcode.CLONE: {
        const newVolumeId = reference.newVolumeId;
        if (newVolumeId === undefined) throw new PlinthError('INVALID_ARGUMENT', 'CLONE needs a new volume id');
        await (request.lengthBytes === 0 ? pool.cloneVolume(volumeId, snapshotId, newVolumeId) : pool.cloneVolume(volumeId, snapshotId, newVolumeId, request.lengthBytes));
        logger.info({ volumeId, snapshotId, newVolumeId }, 'volume cloned from a snapshot');
        return Buffer.alloc(0);
      }
      default:
        throw new PlinthError('INVALID_ARGUMENT', `opcode ${request.opcode} is not a snapshot op`);
    }
  }

  /** Fill `target` from the snapshot at `offset` (local API too: exports of a snapshot held on this node). */
  async read(volumeId: string, snapshotId: string, offset: number, target: Buffer): Promise<void> {
    if (target.length > this.#options.maxIoBytes) {
      throw new PlinthError('TOO_LARGE', `snapshot read of ${target.length} bytes is over the limit of ${this.#options.maxIoBytes}`, { lengthBytes: target.length });
    }
    const store = await this.#handle(volumeId, snapshotId);
    assertInRange(offset, target.length, store.sizeBytes);
    try {
      await store.read(offset, target);
    } catch (err) {
      // The pool shares one instance per snapshot: someone else (a send stream) may have closed it. Reopen once.
      if (!isPlinthError(err, 'SHUTTING_DOWN')) throw err;
      this.#handles.delete(`${volumeId}/${snapshotId}`);
      await (await this.#handle(volumeId, snapshotId)).read(offset, target);
    }
  }

  /** Close the read handle, then delete (unknown: no-op, as in the pool). */
  async deleteSnapshot(volumeId: string, snapshotId: string): Promise<void> {
    await this.#close(`${volumeId}/${snapshotId}`);
    await this.#modules.pool.deleteSnapshot(volumeId, snapshotId);
    this.#modules.logger.info({ volumeId, snapshotId }, 'snapshot deleted');
  }

  /** Close every read handle of a volume (before it is deleted or forgotten). */
  async closeVolume(volumeId: string): Promise<void> {
    const keys = [...this.#handles.keys()].filter((key) => key.startsWith(`${volumeId}/`));
    await Promise.all(keys.map((key) => this.#close(key)));
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.#handles.keys()].map((key) => this.#close(key)));
  }

  #handle(volumeId: string, snapshotId: string): Promise<SnapshotStore> {
    const key = `${volumeId}/${snapshotId}`;
    let opening = this.#handles.get(key);
    if (opening === undefined) {
      this.#evictOldest();
      opening = this.#modules.pool.openSnapshot(volumeId, snapshotId);
      this.#handles.set(key, opening);
      // The caller of this read gets the error; a later read tries again.
      opening.catch(() => this.#handles.delete(key));
    }
    return opening;
  }

  #evictOldest(): void {
    const limit = this.#options.maxOpenSnapshots ?? 64;
    while (this.#handles.size >= limit) {
      const oldest = this.#handles.keys().next().value;
      if (oldest === undefined) return;
      void this.#close(oldest);
    }
  }

  async #close(key: string): Promise<void> {
    const opening = this.#handles.get(key);
    if (opening === undefined) return;
    this.#handles.delete(key);
    try {
      await (await opening).close();
    } catch (err) {
      // It never opened (that read already failed) or is closed already: nothing to let go.
      this.#modules.logger.debug({ err, snapshot: key }, 'snapshot read handle was not open');
    }
  }
}
