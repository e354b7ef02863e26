import type { Logger } from 'pino';
import { PlinthError } from '../../common/plinth-error.js';
import { MAX_SIZE_BYTES } from '../../common/sizes.js';
import type { AttachedDisk } from './disk-set.js';
import type { ExtentAllocator } from './extent-allocator.js';
import type { ExtentIo } from './extent-io.js';
import { ExtentMap } from './extent-map.js';
import type { ExtentRefcounts } from './extent-refcounts.js';
import { assertVolumeId, type MetadataStore } from './metadata-store.js';
import type { PoolFlusher } from './pool-flusher.js';
import type { VolumeState } from './pool-state.js';
import type { DeleteVolumeOptions, DiskStats, Pool, PoolStats, SnapshotInfo, SnapshotStore, VolumeStore } from './pool-types.js';
import {
  assertSnapshotClosed,
  changedExtents,
  createSnapshot,
  deleteSnapshot,
  dropReferences,
  listSnapshots,
  openSnapshot,
  type SnapshotContext,
  snapshotExtents,
  sortedMappings,
} from './snapshot-store.js';
import { cloneVolume, revertVolume } from './volume-clone.js';
import { PoolVolumeStore } from './volume-store.js';

export type { VolumeState } from './pool-state.js';

/**
 * The Pool: volumes' lifecycle over the attached disks. Control operations
 * (open, resize, delete, close) run one at a time through a promise chain;
 * the data path (PoolVolumeStore) never waits for them. Snapshots, clones
 * and reverts (issue 8) are control operations too: snapshot-store.ts and
 * volume-clone.ts.
 */

export interface DiskPoolFields {
  readonly poolId: string;
  readonly extentSizeBytes: number;
  readonly disks: readonly AttachedDisk[];
  readonly volumes: Map<string, VolumeState>;
  readonly metadata: MetadataStore;
  readonly allocator: ExtentAllocator;
  readonly refcounts: ExtentRefcounts;
  readonly io: ExtentIo;
  readonly flusher: PoolFlusher;
  /** Snapshot creation times (Date.now in production). */
  readonly nowMs: () => number;
  readonly logger: Logger;
}

export class DiskPool implements Pool {
  readonly poolId: string;
  readonly extentSizeBytes: number;
  readonly #fields: DiskPoolFields;
  readonly #snapshots: SnapshotContext;
  #control: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(fields: DiskPoolFields) {
    this.poolId = fields.poolId;
    this.extentSizeBytes = fields.extentSizeBytes;
    this.#fields = fields;
    this.#snapshots = fields;
  }

  stats(): PoolStats {
    const { allocator, disks } = this.#fields;
    const extentSizeBytes = this.extentSizeBytes;
    const diskStats: DiskStats[] = disks.map(({ disk, record }) => ({
      id: record.id,
      path: disk.path,
      kind: record.kind,
      // Data extents only: extent 0 holds the superblock.
      capacityBytes: allocator.dataExtents(record.index) * extentSizeBytes,
      usedBytes: allocator.usedExtents(record.index) * extentSizeBytes,
      extentSizeBytes,
    }));
    return {
      poolId: this.poolId,
      extentSizeBytes,
      capacityBytes: diskStats.reduce((sum, disk) => sum + disk.capacityBytes, 0),
      usedBytes: diskStats.reduce((sum, disk) => sum + disk.usedBytes, 0),
      disks: diskStats,
    };
  }

  /**
   * Open or create a volume. A size above the recorded one grows it; a
   * smaller one is refused (INVALID_SIZE): volumes never shrink.
   */
  openVolume(volumeId: string, sizeBytes: number): Promise<VolumeStore> {
    return this.#serialised(async () => {
      assertVolumeId(volumeId);
      assertVolumeSize(sizeBytes);
      const state = await this.#ensureVolume(volumeId, sizeBytes);
      if (state.store !== null) {
        if (!state.store.closed) {
          return state.store;
        }
        // A closing store may still have allocations in flight on the shared map: let it finish first.
        await state.store.close().catch((err: unknown) => {
          this.#fields.logger.warn({ err, volumeId }, 'previous store of the volume failed to close cleanly; reopening anyway');
        });
      }
      const store = new PoolVolumeStore(
        {
          volumeId,
          sizeBytes: state.sizeBytes,
          extents: state.extents,
          onClosed: (closed) => {
            if (state.store === closed) {
              state.store = null;
            }
          },
        },
        {
          io: this.#fields.io,
          allocator: this.#fields.allocator,
          metadata: this.#fields.metadata,
          refcounts: this.#fields.refcounts,
          flush: () => this.#fields.flusher.flush(),
          noteMetadataQueued: () => this.#fields.flusher.noteMetadataQueued(),
          logger: this.#fields.logger,
        },
      );
      state.store = store;
      return store;
    });
  }

  resizeVolume(volumeId: string, sizeBytes: number): Promise<void> {
    return this.#serialised(async () => {
      assertVolumeSize(sizeBytes);
      const state = this.#fields.volumes.get(volumeId);
      if (state === undefined) {
        throw new PlinthError('VOLUME_NOT_FOUND', `volume ${volumeId} has no store in this pool`, { volumeId });
      }
      await this.#grow(volumeId, state, sizeBytes);
    });
  }

  /**
   * Delete a closed volume (or an open one with closeIfOpen) and its
   * snapshots durably, freeing the extents no clone still references. Unknown volumes are a no-op (idempotent for reconcilers).
   */
  deleteVolume(volumeId: string, options: DeleteVolumeOptions = {}): Promise<void> {
    return this.#serialised(async () => {
      const { volumes, metadata, flusher, logger } = this.#fields;
      const state = volumes.get(volumeId);
      if (state === undefined) {
        return;
      }
      if (state.store !== null && options.closeIfOpen === true) {
        // Its onClosed clears state.store; nothing can reopen it while this step holds the queue.
        await state.store.close();
      }
      if (state.store !== null) {
        throw new PlinthError('VOLUME_ATTACHED', `volume ${volumeId} is open on this pool; close it before deleting`, { volumeId });
      }
      for (const snapshot of state.snapshots.values()) {
        assertSnapshotClosed(volumeId, snapshot);
      }
      // Write any mapping change still queued for it, so none lands after the delete.
      await flusher.flush();
      const mappings = [...state.extents.entries()];
      const snapshots = [...state.snapshots.values()].map((snapshot) => [snapshot.snapshotId, sortedMappings(snapshot.extents)] as const);
      await metadata.deleteVolume(
        volumeId,
        mappings.map(([logical]) => logical),
        snapshots.map(([snapshotId, snapshotMappings]) => [snapshotId, snapshotMappings.map(([logical]) => logical)] as const),
      );
      volumes.delete(volumeId);
      for (const [logical] of mappings) {
        state.extents.delete(logical);
      }
      state.snapshots.clear();
      // Clones hold their own references: their extents survive here.
      let freed = dropReferences(this.#fields, mappings.map(([, location]) => location));
      for (const [, snapshotMappings] of snapshots) {
        freed += dropReferences(this.#fields, snapshotMappings.map(([, location]) => location));
      }
      // The unmapping is durable already; the next flush releases the extents (no metadata left to write for them).
      await flusher.flush();
      logger.info({ volumeId, freedExtents: freed, deletedSnapshots: snapshots.length }, 'deleted volume store');
    });
  }

  volumeAllocatedBytes(volumeId: string): number {
    const state = this.#fields.volumes.get(volumeId);
    return state === undefined ? 0 : state.extents.allocatedExtents * this.extentSizeBytes;
  }

  createSnapshot(volumeId: string, snapshotId: string): Promise<void> {
    return this.#serialised(() => createSnapshot(this.#snapshots, volumeId, snapshotId));
  }

  openSnapshot(volumeId: string, snapshotId: string): Promise<SnapshotStore> {
    return this.#serialised(async () => openSnapshot(this.#snapshots, volumeId, snapshotId));
  }

  deleteSnapshot(volumeId: string, snapshotId: string): Promise<void> {
    return this.#serialised(() => deleteSnapshot(this.#snapshots, volumeId, snapshotId));
  }

  listSnapshots(volumeId: string): SnapshotInfo[] {
    return listSnapshots(this.#snapshots, volumeId);
  }

  cloneVolume(sourceVolumeId: string, snapshotId: string, newVolumeId: string, sizeBytes?: number): Promise<void> {
    return this.#serialised(() => cloneVolume(this.#snapshots, { sourceVolumeId, snapshotId, newVolumeId, sizeBytes }));
  }

  revertVolume(volumeId: string, snapshotId: string): Promise<void> {
    return this.#serialised(() => revertVolume(this.#snapshots, volumeId, snapshotId));
  }

  snapshotExtents(volumeId: string, snapshotId: string): number[] {
    return snapshotExtents(this.#fields.volumes, volumeId, snapshotId);
  }

  changedExtents(volumeId: string, fromSnapshotId: string, toSnapshotId: string): number[] {
    return changedExtents(this.#fields.volumes, volumeId, fromSnapshotId, toSnapshotId);
  }

  /** Pool-wide flush: every dirty disk, then the queued metadata. */
  flush(): Promise<void> {
    return this.#fields.flusher.flush();
  }

  /** Close every open volume (each flushes), flush, and close the disks. The level db stays open (the daemon owns it). */
  close(): Promise<void> {
    return this.#serialised(async () => {
      this.#closed = true;
      const errors: unknown[] = [];
      const stores: { close(): Promise<void> }[] = [...this.#fields.volumes.values()].flatMap((state) => (state.store === null ? [] : [state.store]));
      for (const state of this.#fields.volumes.values()) {
        for (const snapshot of state.snapshots.values()) {
          if (snapshot.device !== null) stores.push(snapshot.device);
        }
      }
      for (const result of await Promise.allSettled(stores.map((store) => store.close()))) {
        if (result.status === 'rejected') {
          const reason: unknown = result.reason;
          errors.push(reason);
        }
      }
      await this.#fields.flusher.flush().catch((err: unknown) => errors.push(err));
      await this.#closeDisks(errors);
      if (errors.length > 0) {
        throw errors[0];
      }
    }, true);
  }

  /**
   * Close the disks without flushing anything: what a crash leaves behind.
   * For fatal shutdown paths and crash tests; unflushed writes may be lost.
   */
  async closeWithoutFlush(): Promise<void> {
    this.#closed = true;
    const errors: unknown[] = [];
    await this.#closeDisks(errors);
    if (errors.length > 0) {
      throw errors[0];
    }
  }

  async #closeDisks(errors: unknown[]): Promise<void> {
    for (const { disk } of this.#fields.disks) {
      await disk.close().catch((err: unknown) => errors.push(err));
    }
  }

  async #ensureVolume(volumeId: string, sizeBytes: number): Promise<VolumeState> {
    const existing = this.#fields.volumes.get(volumeId);
    if (existing !== undefined) {
      await this.#grow(volumeId, existing, sizeBytes);
      return existing;
    }
    await this.#fields.metadata.saveVolumeRecord(volumeId, { sizeBytes });
    const state: VolumeState = { sizeBytes, extents: new ExtentMap(), store: null, snapshots: new Map(), origin: null };
    this.#fields.volumes.set(volumeId, state);
    this.#fields.logger.info({ volumeId, sizeBytes }, 'created volume store');
    return state;
  }

  async #grow(volumeId: string, state: VolumeState, sizeBytes: number): Promise<void> {
    if (sizeBytes < state.sizeBytes) {
      throw new PlinthError('INVALID_SIZE', `volume ${volumeId} is ${state.sizeBytes} bytes; it cannot shrink to ${sizeBytes}`, {
        volumeId,
        sizeBytes,
        currentSizeBytes: state.sizeBytes,
      });
    }
    if (sizeBytes === state.sizeBytes) {
      return;
    }
    // A clone keeps its origin in the record (volume-clone.ts recognises a repeated clone by it).
    await this.#fields.metadata.saveVolumeRecord(volumeId, state.origin === null ? { sizeBytes } : { sizeBytes, origin: state.origin });
    state.sizeBytes = sizeBytes;
    state.store?.setSizeBytes(sizeBytes);
  }

  #serialised<T>(operation: () => Promise<T>, closing = false): Promise<T> {
    const run = async (): Promise<T> => {
      if (this.#closed && !closing) {
        throw new PlinthError('SHUTTING_DOWN', 'the pool is closed', { poolId: this.poolId });
      }
      return operation();
    };
    const result = this.#control.then(run, run);
    // The caller receives the outcome through `result`; the chain only needs to know it settled.
    const settled = (): void => undefined;
    this.#control = result.then(settled, settled);
    return result;
  }
}

function assertVolumeSize(sizeBytes: number): void {
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes < 0 || sizeBytes > MAX_SIZE_BYTES) {
    throw new PlinthError('INVALID_SIZE', `volume size must be a non-negative integer number of bytes, got ${sizeBytes}`, { sizeBytes });
  }
}
