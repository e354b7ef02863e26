import { PlinthError } from '../../common/plinth-error.js';
import type { DiskKind } from './disk.js';
import { locationDiskIndex, locationExtentIndex, packLocation } from './extent-map.js';

/**
 * The pool's metadata in its `level` sublevel: keys, values and batches.
 *
 * The daemon creates the sublevel with exactly:
 *
 *     new Level<string, string>(dir).sublevel<string, Buffer>('pool', { valueEncoding: 'buffer' })
 *
 * Keys (strings; volume ids never contain '!'):
 *
 * | key                          | value                                          |
 * | ---------------------------- | ---------------------------------------------- |
 * | `pool`                       | JSON PoolRecord (pool id, extent size, disks)  |
 * | `hwm!<diskIndex>`            | JSON number: the disk's extent high-water mark |
 * | `vol!<volumeId>`             | JSON VolumeRecord                              |
 * | `map!<volumeId>!<logical>`   | 8 bytes: u32le disk index, u32le extent index  |
 * | `snap!<volumeId>!<snapshotId>` | JSON SnapshotRecord (issue 8)                |
 * | `smap!<volumeId>!<snapshotId>!<logical>` | 8 bytes, like `map!`             |
 *
 * `<logical>` is 12 hex digits so keys sort by offset. Snapshot keys are
 * written once, in one synced batch with their record, and never change
 * until the snapshot is deleted (docs/snapshots.md). Mapping changes are
 * queued in memory and written by the pool's flush, after the data they map
 * is fdatasync'd (ARCHITECTURE invariant 5); everything else is written
 * immediately with `sync: true`.
 */
export interface PoolDatabase {
  get(key: string): Promise<Buffer | undefined>;
  batch(operations: PoolBatchOperation[], options: { sync: boolean; valueEncoding: 'buffer' }): Promise<void>;
  iterator(options: { gte: string; lt: string }): AsyncIterable<[string, Buffer]>;
}

export type PoolBatchOperation = { type: 'put'; key: string; value: Buffer } | { type: 'del'; key: string };

export const POOL_RECORD_VERSION = 1;

export interface DiskRecord {
  readonly id: string;
  readonly index: number;
  readonly path: string;
  readonly kind: DiskKind;
  readonly capacityBytes: number;
}

export interface PoolRecord {
  readonly formatVersion: number;
  readonly poolId: string;
  readonly extentSizeBytes: number;
  readonly disks: readonly DiskRecord[];
}

export interface VolumeRecord {
  readonly sizeBytes: number;
  /** Set on a clone (issue 8): the snapshot it was made from, so a repeated clone request is recognised. */
  readonly origin?: { readonly volumeId: string; readonly snapshotId: string };
}

export interface SnapshotRecord {
  readonly sizeBytes: number;
  readonly createdAtMs: number;
}

/** A snapshot's or clone's complete extent map, as [logical index, packed location] pairs. */
export type MappingList = readonly (readonly [number, number])[];

/** A snapshot of queued mapping changes: key → new value, or null to delete. */
export type MappingBatch = Map<string, Buffer | null>;

const SYNC_WRITE = { sync: true, valueEncoding: 'buffer' } as const;
const POOL_KEY = 'pool';
const VOLUME_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,254}$/;

export function assertVolumeId(volumeId: string): void {
  if (!VOLUME_ID_PATTERN.test(volumeId)) {
    throw new PlinthError('INVALID_ARGUMENT', `invalid volume id "${volumeId}": use 1-255 of [A-Za-z0-9._:@-], starting alphanumeric`, { volumeId });
  }
}

function mappingKey(volumeId: string, logicalIndex: number): string {
  return `map!${volumeId}!${logicalIndex.toString(16).padStart(12, '0')}`;
}

function snapshotKey(volumeId: string, snapshotId: string): string {
  return `snap!${volumeId}!${snapshotId}`;
}

function snapshotMappingKey(volumeId: string, snapshotId: string, logicalIndex: number): string {
  return `smap!${volumeId}!${snapshotId}!${logicalIndex.toString(16).padStart(12, '0')}`;
}

function locationValue(location: number): Buffer {
  const value = Buffer.allocUnsafe(8);
  value.writeUInt32LE(locationDiskIndex(location), 0);
  value.writeUInt32LE(locationExtentIndex(location), 4);
  return value;
}

export class MetadataStore {
  readonly #db: PoolDatabase;
  #queued: MappingBatch = new Map();

  constructor(db: PoolDatabase) {
    this.#db = db;
  }

  async loadPoolRecord(): Promise<PoolRecord | undefined> {
    const value = await this.#get(POOL_KEY);
    return value === undefined ? undefined : (parseJson(value, POOL_KEY) as PoolRecord);
  }

  savePoolRecord(record: PoolRecord): Promise<void> {
    return this.#write([{ type: 'put', key: POOL_KEY, value: jsonValue(record) }]);
  }

  async loadHighWaterMark(diskIndex: number): Promise<number | undefined> {
    const value = await this.#get(`hwm!${diskIndex}`);
    return value === undefined ? undefined : (parseJson(value, `hwm!${diskIndex}`) as number);
  }

  /** Durable before the allocator hands out any extent below it (see extent-allocator.ts). */
  saveHighWaterMark(diskIndex: number, highWaterMark: number): Promise<void> {
    return this.#write([{ type: 'put', key: `hwm!${diskIndex}`, value: jsonValue(highWaterMark) }]);
  }

  async loadVolumes(): Promise<Map<string, VolumeRecord>> {
    const volumes = new Map<string, VolumeRecord>();
    for await (const [key, value] of this.#db.iterator({ gte: 'vol!', lt: 'vol"' })) {
      volumes.set(key.slice('vol!'.length), parseJson(value, key) as VolumeRecord);
    }
    return volumes;
  }

  saveVolumeRecord(volumeId: string, record: VolumeRecord): Promise<void> {
    return this.#write([{ type: 'put', key: `vol!${volumeId}`, value: jsonValue(record) }]);
  }

  /** Visit every durable mapping. */
  async loadMappings(visit: (volumeId: string, logicalIndex: number, location: number) => void): Promise<void> {
    for await (const [key, value] of this.#db.iterator({ gte: 'map!', lt: 'map"' })) {
      const separator = key.lastIndexOf('!');
      const volumeId = key.slice('map!'.length, separator);
      const logicalIndex = Number.parseInt(key.slice(separator + 1), 16);
      if (value.length !== 8 || !Number.isSafeInteger(logicalIndex) || separator <= 'map!'.length) {
        throw new PlinthError('METADATA_CORRUPT', `pool metadata: malformed mapping entry "${key}"`, { key });
      }
      visit(volumeId, logicalIndex, packLocation(value.readUInt32LE(0), value.readUInt32LE(4)));
    }
  }

  queueMapping(volumeId: string, logicalIndex: number, location: number): void {
    this.#queued.set(mappingKey(volumeId, logicalIndex), locationValue(location));
  }

  queueUnmapping(volumeId: string, logicalIndex: number): void {
    this.#queued.set(mappingKey(volumeId, logicalIndex), null);
  }

  get queuedCount(): number {
    return this.#queued.size;
  }

  /** Take every queued change; the caller writes it with writeBatch() or gives it back with requeue(). */
  takeQueued(): MappingBatch {
    const batch = this.#queued;
    this.#queued = new Map();
    return batch;
  }

  /** Give back a batch that failed to write, under any change queued since (newer wins). */
  requeue(batch: MappingBatch): void {
    const newer = this.#queued;
    this.#queued = batch;
    for (const [key, value] of newer) {
      this.#queued.set(key, value);
    }
  }

  writeBatch(batch: MappingBatch): Promise<void> {
    const operations: PoolBatchOperation[] = [];
    for (const [key, value] of batch) {
      operations.push(value === null ? { type: 'del', key } : { type: 'put', key, value });
    }
    return this.#write(operations);
  }

  /** Delete a volume's record, the given mappings and the given snapshots (with their maps) in one durable batch. */
  deleteVolume(volumeId: string, logicalIndexes: Iterable<number>, snapshots: Iterable<readonly [string, Iterable<number>]> = []): Promise<void> {
    const operations: PoolBatchOperation[] = [{ type: 'del', key: `vol!${volumeId}` }];
    for (const logicalIndex of logicalIndexes) {
      operations.push({ type: 'del', key: mappingKey(volumeId, logicalIndex) });
    }
    for (const [snapshotId, snapshotLogicals] of snapshots) {
      operations.push(...snapshotDeletions(volumeId, snapshotId, snapshotLogicals));
    }
    return this.#write(operations);
  }

  async loadSnapshots(): Promise<Map<string, Map<string, SnapshotRecord>>> {
    const snapshots = new Map<string, Map<string, SnapshotRecord>>();
    for await (const [key, value] of this.#db.iterator({ gte: 'snap!', lt: 'snap"' })) {
      const [volumeId, snapshotId] = splitIds(key.slice('snap!'.length), key);
      let ofVolume = snapshots.get(volumeId);
      if (ofVolume === undefined) {
        ofVolume = new Map();
        snapshots.set(volumeId, ofVolume);
      }
      ofVolume.set(snapshotId, parseJson(value, key) as SnapshotRecord);
    }
    return snapshots;
  }

  /** Visit every durable snapshot mapping. */
  async loadSnapshotMappings(visit: (volumeId: string, snapshotId: string, logicalIndex: number, location: number) => void): Promise<void> {
    for await (const [key, value] of this.#db.iterator({ gte: 'smap!', lt: 'smap"' })) {
      const separator = key.lastIndexOf('!');
      const [volumeId, snapshotId] = splitIds(key.slice('smap!'.length, separator), key);
      const logicalIndex = Number.parseInt(key.slice(separator + 1), 16);
      if (value.length !== 8 || !Number.isSafeInteger(logicalIndex)) {
        throw new PlinthError('METADATA_CORRUPT', `pool metadata: malformed snapshot mapping entry "${key}"`, { key });
      }
      visit(volumeId, snapshotId, logicalIndex, packLocation(value.readUInt32LE(0), value.readUInt32LE(4)));
    }
  }

  /** A new snapshot: its record and its whole extent map in one durable batch. */
  saveSnapshot(volumeId: string, snapshotId: string, record: SnapshotRecord, mappings: MappingList): Promise<void> {
    const operations: PoolBatchOperation[] = [{ type: 'put', key: snapshotKey(volumeId, snapshotId), value: jsonValue(record) }];
    for (const [logicalIndex, location] of mappings) {
      operations.push({ type: 'put', key: snapshotMappingKey(volumeId, snapshotId, logicalIndex), value: locationValue(location) });
    }
    return this.#write(operations);
  }

  deleteSnapshot(volumeId: string, snapshotId: string, logicalIndexes: Iterable<number>): Promise<void> {
    return this.#write(snapshotDeletions(volumeId, snapshotId, logicalIndexes));
  }

  /** A clone: the new volume's record and its whole extent map in one durable batch. */
  createVolumeWithMappings(volumeId: string, record: VolumeRecord, mappings: MappingList): Promise<void> {
    const operations: PoolBatchOperation[] = [{ type: 'put', key: `vol!${volumeId}`, value: jsonValue(record) }];
    for (const [logicalIndex, location] of mappings) {
      operations.push({ type: 'put', key: mappingKey(volumeId, logicalIndex), value: locationValue(location) });
    }
    return this.#write(operations);
  }

  /** A revert: drop the volume's mappings at `oldLogicalIndexes` and write `mappings` instead, in one durable batch. */
  replaceMappings(volumeId: string, oldLogicalIndexes: Iterable<number>, mappings: MappingList): Promise<void> {
    const changes = new Map<string, Buffer | null>();
    for (const logicalIndex of oldLogicalIndexes) {
      changes.set(mappingKey(volumeId, logicalIndex), null);
    }
    for (const [logicalIndex, location] of mappings) {
      changes.set(mappingKey(volumeId, logicalIndex), locationValue(location));
    }
    return this.writeBatch(changes);
  }

  async #get(key: string): Promise<Buffer | undefined> {
    try {
      return await this.#db.get(key);
    } catch (err) {
      throw new PlinthError('IO_ERROR', `pool metadata: reading "${key}" failed`, { key }, { cause: err });
    }
  }

  async #write(operations: PoolBatchOperation[]): Promise<void> {
    if (operations.length === 0) {
      return;
    }
    try {
      await this.#db.batch(operations, SYNC_WRITE);
    } catch (err) {
      throw new PlinthError('IO_ERROR', `pool metadata: writing ${operations.length} entries failed`, { entries: operations.length }, { cause: err });
    }
  }
}

function snapshotDeletions(volumeId: string, snapshotId: string, logicalIndexes: Iterable<number>): PoolBatchOperation[] {
  const operations: PoolBatchOperation[] = [{ type: 'del', key: snapshotKey(volumeId, snapshotId) }];
  for (const logicalIndex of logicalIndexes) {
    operations.push({ type: 'del', key: snapshotMappingKey(volumeId, snapshotId, logicalIndex) });
  }
  return operations;
}

/** `<volumeId>!<snapshotId>` (neither contains '!'). */
function splitIds(ids: string, key: string): [string, string] {
  const parts = ids.split('!');
  const [volumeId, snapshotId] = parts;
  if (parts.length !== 2 || volumeId === undefined || snapshotId === undefined || volumeId === '' || snapshotId === '') {
    throw new PlinthError('METADATA_CORRUPT', `pool metadata: malformed snapshot key "${key}"`, { key });
  }
  return [volumeId, snapshotId];
}

function jsonValue(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

function parseJson(value: Buffer, key: string): unknown {
  try {
    return JSON.parse(value.toString('utf8')) as unknown;
  } catch (err) {
    throw new PlinthError('METADATA_CORRUPT', `pool metadata: "${key}" is not valid JSON`, { key }, { cause: err });
  }
}
