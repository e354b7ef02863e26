import type { Logger } from 'pino';
import { PlinthError } from '../../common/plinth-error.js';
import {
  decodeU64,
  encodeU64,
  LAZY_WRITE,
  markerKey,
  regionKey,
  regionKeyPrefix,
  type ReplicaBatchOperation,
  type ReplicaDatabase,
  SYNC_WRITE,
} from './replica-database.js';
import type { RegionList } from './replica-payloads.js';
import { type RegionRecord, RegionTracker } from './region-tracker.js';

/**
 * The persistence shell around RegionTracker for one volume (ARCHITECTURE
 * invariant 4): marks a region durably before a write to it may proceed,
 * clears idle regions lazily after flushes, answers GET_ACTIVITY and
 * GET_DIRTY. Database writes of one volume go through one chain so a clear
 * can never overtake a later activation of the same region.
 */

/** Regions of 4 MiB: one sync'd mark per 4 MiB of fresh writes, 256 marks per GiB at most. */
export const ACTIVITY_REGION_BYTES = 4 * 1024 * 1024;

export interface VolumeActivityModules {
  readonly db: ReplicaDatabase;
  readonly logger: Logger;
}

/** A write's hold on its regions; pass back to `endWrite`. */
export interface WriteTicket {
  readonly regions: readonly number[];
}

export class VolumeActivity {
  readonly volumeId: string;
  readonly #tracker: RegionTracker;
  readonly #modules: VolumeActivityModules;
  /** Durable activation of a region in progress: later writes to it wait for the same promise. */
  readonly #activating = new Map<number, Promise<void>>();
  #chain: Promise<void> = Promise.resolve();
  /**
   * Group commit: marks of regions activated while the chain is busy join
   * one sync'd batch (8 catch-up chunks of fresh regions were waiting for 8
   * fsyncs in a row). Open only while it is the last entry of the chain, so
   * nothing (a clear) that was enqueued after it is overtaken by a mark.
   */
  #openMarkBatch: { readonly records: Map<number, RegionRecord>; readonly written: Promise<void> } | undefined;
  /** A failed durable mark leaves memory ahead of disk: refuse every later write (the replica is faulted). */
  #broken: unknown;

  private constructor(volumeId: string, tracker: RegionTracker, modules: VolumeActivityModules) {
    this.volumeId = volumeId;
    this.#tracker = tracker;
    this.#modules = modules;
  }

  static async load(volumeId: string, regionSizeBytes: number, modules: VolumeActivityModules): Promise<VolumeActivity> {
    const records = new Map<number, RegionRecord>();
    const prefix = regionKeyPrefix(volumeId);
    for await (const [key, value] of modules.db.iterator({ gte: prefix, lt: `${prefix}\xff` })) {
      const region = Number.parseInt(key.slice(prefix.length), 16);
      const seq = decodeU64(value);
      if (!Number.isSafeInteger(region) || seq === undefined || value.length !== 9) {
        throw new PlinthError('METADATA_CORRUPT', `activity log entry ${key} is unreadable`, { volumeId, key });
      }
      records.set(region, { seq, active: value.readUInt8(8) === 1 });
    }
    const storedMarker = await modules.db.get(markerKey(volumeId));
    const markerFloor = storedMarker === undefined ? 0 : decodeU64(storedMarker);
    if (markerFloor === undefined) throw new PlinthError('METADATA_CORRUPT', `dirty marker of volume ${volumeId} is unreadable`, { volumeId });
    const activeCount = [...records.values()].filter((record) => record.active).length;
    if (activeCount > 0) modules.logger.info({ volumeId, activeRegions: activeCount }, 'activity log has regions from before the restart');
    return new VolumeActivity(volumeId, new RegionTracker(regionSizeBytes, records, markerFloor), modules);
  }

  get regionSizeBytes(): number {
    return this.#tracker.regionSizeBytes;
  }

  /** Before a write/trim/zero of the range: its regions are durably marked when this resolves. */
  async beginWrite(offset: number, lengthBytes: number): Promise<WriteTicket> {
    if (this.#broken !== undefined) {
      throw new PlinthError('IO_ERROR', `volume ${this.volumeId}: the activity log failed earlier; the replica must be rebuilt`, { volumeId: this.volumeId }, { cause: this.#broken });
    }
    const regions = this.#tracker.regionsOf(offset, lengthBytes);
    const activations = this.#tracker.startWrite(regions);
    if (activations.size > 0) {
      const persisted = this.#persistMarks(activations);
      for (const region of activations.keys()) this.#activating.set(region, persisted);
      void persisted.then(
        () => this.#forget(activations.keys(), persisted),
        (err: unknown) => {
          // Broken in the same callback that stops the regions counting as activating, so
          // beginWriteNow never sees an active, non-activating region whose mark failed.
          this.#broken ??= err;
          this.#forget(activations.keys(), persisted);
        },
      );
    }
    try {
      await Promise.all(regions.map((region) => this.#activating.get(region)));
    } catch (err) {
      this.#broken = err;
      this.#modules.logger.error({ err, volumeId: this.volumeId }, 'activity log mark failed; refusing further writes');
      this.#tracker.finishWrite(regions);
      throw new PlinthError('IO_ERROR', `volume ${this.volumeId}: cannot record the write in the activity log`, { volumeId: this.volumeId }, { cause: err });
    }
    return { regions };
  }

  /**
   * The synchronous beginWrite for the data path: succeeds (returns the
   * region to pass to endWriteInRegion) only when the write falls in one
   * region that is already durably marked, so invariant 4 needs nothing
   * more before the write proceeds. undefined: use beginWrite.
   */
  beginWriteNow(offset: number, lengthBytes: number): number | undefined {
    if (this.#broken !== undefined || this.#activating.size > 0) return undefined;
    return this.#tracker.startWriteInActiveRegion(offset, lengthBytes);
  }

  endWriteInRegion(region: number): void {
    this.#tracker.finishWriteInRegion(region);
  }

  endWrite(ticket: WriteTicket): void {
    this.#tracker.finishWrite(ticket.regions);
  }

  /** Wrap a flush of the volume's store: idle regions are cleared after it completed. */
  async aroundFlush(flush: () => Promise<void>): Promise<void> {
    const epoch = this.#tracker.startFlush();
    await flush();
    const cleared = this.#tracker.finishFlush(epoch);
    if (cleared.size > 0) {
      this.#persistClears(cleared).catch((err: unknown) => {
        // Harmless: the regions stay marked on disk and are copied once more at a failover.
        this.#modules.logger.warn({ err, volumeId: this.volumeId }, 'clearing activity log regions failed');
      });
    }
  }

  /** GET_ACTIVITY: regions possibly written by requests in flight at a crash. */
  activity(offset: number, lengthBytes: number): RegionList {
    const [first, end] = this.#regionBounds(offset, lengthBytes);
    return { markerSeq: this.#tracker.currentMarker(), complete: true, regionSizeBytes: this.regionSizeBytes, regions: this.#tracker.activeRegions(first, end) };
  }

  /** GET_DIRTY: regions changed since `markerSeq`; the answer's marker is durable before it is returned. */
  async dirtySince(markerSeq: number, offset: number, lengthBytes: number): Promise<RegionList> {
    const [first, end] = this.#regionBounds(offset, lengthBytes);
    const answer = this.#tracker.dirtySince(markerSeq, first, end);
    await this.#enqueue(() => this.#modules.db.batch([{ type: 'put', key: markerKey(this.volumeId), value: encodeU64(answer.markerSeq) }], SYNC_WRITE));
    return { ...answer, regionSizeBytes: this.regionSizeBytes };
  }

  #regionBounds(offset: number, lengthBytes: number): [number, number] {
    const regions = this.#tracker.regionsOf(offset, lengthBytes);
    const first = regions[0] ?? 0;
    return [first, first + regions.length];
  }

  /** Durable marks: join the open batch if it has not started yet, else open a new one. */
  #persistMarks(records: ReadonlyMap<number, RegionRecord>): Promise<void> {
    const open = this.#openMarkBatch;
    if (open !== undefined) {
      for (const [region, record] of records) open.records.set(region, record);
      return open.written;
    }
    const batch = new Map(records);
    const written = this.#enqueue(() => {
      // Started: later marks form the next batch.
      if (this.#openMarkBatch?.records === batch) this.#openMarkBatch = undefined;
      return this.#modules.db.batch(this.#operations(batch), SYNC_WRITE);
    });
    this.#openMarkBatch = { records: batch, written };
    return written;
  }

  /** Clears need no sync: one lost in a crash leaves a region marked, copied once more at a failover. */
  #persistClears(records: ReadonlyMap<number, RegionRecord>): Promise<void> {
    const operations = this.#operations(records);
    return this.#enqueue(() => this.#modules.db.batch(operations, LAZY_WRITE));
  }

  #operations(records: ReadonlyMap<number, RegionRecord>): ReplicaBatchOperation[] {
    const operations: ReplicaBatchOperation[] = [];
    for (const [region, record] of records) {
      const value = Buffer.alloc(9);
      value.writeBigUInt64BE(BigInt(record.seq));
      value.writeUInt8(record.active ? 1 : 0, 8);
      operations.push({ type: 'put', key: regionKey(this.volumeId, region), value });
    }
    return operations;
  }

  #enqueue(write: () => Promise<void>): Promise<void> {
    // Whatever is enqueued now comes after the open mark batch: close it (see #openMarkBatch).
    this.#openMarkBatch = undefined;
    const next = this.#chain.then(write);
    // The chain itself must not stay rejected; each caller handles its own failure.
    this.#chain = next.catch(() => undefined);
    return next;
  }

  #forget(regions: Iterable<number>, promise: Promise<void>): void {
    for (const region of regions) {
      if (this.#activating.get(region) === promise) this.#activating.delete(region);
    }
  }
}
