import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { PlinthError } from '../../common/plinth-error.js';
import type { Disk } from './disk.js';
import type { DiskLayer } from './disk-file-io.js';
import { DiskPool } from './disk-pool.js';
import type { VolumeState } from './pool-state.js';
import { attachDisks, type AttachedDisk } from './disk-set.js';
import { type AllocatorDiskOptions, ExtentAllocator } from './extent-allocator.js';
import { ExtentIo } from './extent-io.js';
import { type InlineIoOptions, resolveInlineIoOptions } from './inline-io-policy.js';
import { ExtentMap, locationDiskIndex, MAX_DISKS } from './extent-map.js';
import { ExtentRefcounts } from './extent-refcounts.js';
import { MetadataStore, POOL_RECORD_VERSION, type PoolDatabase, type PoolRecord } from './metadata-store.js';
import { DEFAULT_METADATA_QUEUE_LIMIT, PoolFlusher } from './pool-flusher.js';
import type { DiskSpec } from './pool-types.js';
import { diskLayerFromEnv } from './power-loss-disk.js';

/**
 * Compose a pool: load (or create) the pool record, attach the disks,
 * rebuild the allocator from the durable extent maps. The one entry point
 * of blockdev/pool for the daemon:
 *
 *     const db = new Level<string, string>(dir).sublevel<string, Buffer>('pool', { valueEncoding: 'buffer' });
 *     const pool = await openPool({ disks: [{ path, sizeBytes }] }, { db, logger });
 */

export const DEFAULT_EXTENT_SIZE_BYTES = 1024 * 1024;
export const MIN_EXTENT_SIZE_BYTES = 64 * 1024;
export const MAX_EXTENT_SIZE_BYTES = 64 * 1024 * 1024;

export interface OpenPoolOptions {
  readonly disks: readonly DiskSpec[];
  /** Only used when the pool is created; must match the recorded size when given later. Default 1 MiB. */
  readonly extentSizeBytes?: number;
  /** Queued metadata changes that start a background flush (default 4096). */
  readonly metadataQueueLimit?: number;
  /**
   * When small disk reads and writes run synchronously on the event loop
   * (inline-io-policy.ts has the measurements). Default: up to 64 KiB, off
   * for a cool-down after an op slower than 1 ms. `{ maxInlineBytes: 0 }`
   * sends everything to the threadpool.
   */
  readonly inlineIo?: Partial<InlineIoOptions>;
  /**
   * TEST ONLY: a layer under every disk's I/O (power-loss-disk.ts). Default:
   * whatever PLINTH_TEST_DISK asks for (docs/testing.md), normally none.
   */
  readonly diskLayer?: DiskLayer;
}

export interface OpenPoolModules {
  readonly db: PoolDatabase;
  readonly logger: Logger;
  /** Clock for snapshot creation times (default Date.now). */
  readonly nowMs?: () => number;
}

export async function openPool(options: OpenPoolOptions, modules: OpenPoolModules): Promise<DiskPool> {
  const logger = modules.logger.child({ module: 'pool' });
  if (options.disks.length === 0 || options.disks.length > MAX_DISKS) {
    throw new PlinthError('CONFIG_INVALID', `a pool needs between 1 and ${MAX_DISKS} disks, got ${options.disks.length}`, {
      diskCount: options.disks.length,
    });
  }
  const inlineIo = resolveInlineIoOptions(options.inlineIo);
  const layer = options.diskLayer ?? diskLayerFromEnv(process.env, logger);
  const metadata = new MetadataStore(modules.db);
  const initialRecord = await loadOrCreateRecord(options.extentSizeBytes, metadata, logger);
  const { disks, record } = await attachDisks(
    { specs: options.disks, record: initialRecord, inlineIo, ...(layer === undefined ? {} : { layer }) },
    { metadata, logger },
  );
  try {
    return await assemblePool(
      { disks, record, metadataQueueLimit: options.metadataQueueLimit ?? DEFAULT_METADATA_QUEUE_LIMIT },
      { metadata, logger, nowMs: modules.nowMs ?? Date.now },
    );
  } catch (err) {
    await Promise.all(
      disks.map(({ disk }) => disk.close().catch((closeErr: unknown) => logger.warn({ err: closeErr, path: disk.path }, 'closing disk after a failed open failed'))),
    );
    throw err;
  }
}

async function loadOrCreateRecord(extentSizeBytes: number | undefined, metadata: MetadataStore, logger: Logger): Promise<PoolRecord> {
  if (extentSizeBytes !== undefined) {
    assertExtentSize(extentSizeBytes);
  }
  const existing = await metadata.loadPoolRecord();
  if (existing !== undefined) {
    if (existing.formatVersion !== POOL_RECORD_VERSION) {
      throw new PlinthError('METADATA_CORRUPT', `pool record has unknown format version ${existing.formatVersion}`, { formatVersion: existing.formatVersion });
    }
    if (extentSizeBytes !== undefined && extentSizeBytes !== existing.extentSizeBytes) {
      throw new PlinthError('CONFIG_INVALID', `pool ${existing.poolId} uses ${existing.extentSizeBytes}-byte extents; the extent size cannot change to ${extentSizeBytes}`, {
        poolId: existing.poolId,
        extentSizeBytes: existing.extentSizeBytes,
      });
    }
    return existing;
  }
  // The record exists before any disk is touched, so a crash during disk
  // initialisation leaves disks that name a pool this node knows.
  const created: PoolRecord = {
    formatVersion: POOL_RECORD_VERSION,
    poolId: randomUUID(),
    extentSizeBytes: extentSizeBytes ?? DEFAULT_EXTENT_SIZE_BYTES,
    disks: [],
  };
  await metadata.savePoolRecord(created);
  logger.info({ poolId: created.poolId, extentSizeBytes: created.extentSizeBytes }, 'created pool');
  return created;
}

export function assertExtentSize(extentSizeBytes: number): void {
  const powerOfTwo = Number.isSafeInteger(extentSizeBytes) && extentSizeBytes > 0 && (extentSizeBytes & (extentSizeBytes - 1)) === 0;
  if (!powerOfTwo || extentSizeBytes < MIN_EXTENT_SIZE_BYTES || extentSizeBytes > MAX_EXTENT_SIZE_BYTES) {
    throw new PlinthError('CONFIG_INVALID', `extent size must be a power of two between 64 KiB and 64 MiB, got ${extentSizeBytes}`, { extentSizeBytes });
  }
}

async function assemblePool(
  options: { disks: readonly AttachedDisk[]; record: PoolRecord; metadataQueueLimit: number },
  modules: { metadata: MetadataStore; logger: Logger; nowMs: () => number },
): Promise<DiskPool> {
  const { disks, record, metadataQueueLimit } = options;
  const { metadata, logger, nowMs } = modules;
  const allocatorDisks: AllocatorDiskOptions[] = [];
  for (const { record: diskRecord } of disks) {
    const extentCount = Math.floor(diskRecord.capacityBytes / record.extentSizeBytes);
    const stored = await metadata.loadHighWaterMark(diskRecord.index);
    if (stored === undefined) {
      logger.warn({ diskId: diskRecord.id }, 'pool disk has no high-water mark; treating every extent as possibly written');
    }
    allocatorDisks.push({ index: diskRecord.index, extentCount, highWaterMark: stored ?? extentCount });
  }
  const allocator = new ExtentAllocator(
    { disks: allocatorDisks },
    { persistHighWaterMark: (diskIndex, highWaterMark) => metadata.saveHighWaterMark(diskIndex, highWaterMark) },
  );
  const refcounts = new ExtentRefcounts();
  const volumes = await loadVolumes(record.extentSizeBytes, metadata, { allocator, refcounts });
  const diskByIndex = new Map<number, Disk>(disks.map(({ disk, record: diskRecord }) => [diskRecord.index, disk]));
  const io = new ExtentIo({ extentSizeBytes: record.extentSizeBytes, disks: diskByIndex });
  const flusher = new PoolFlusher(
    { disks: disks.map(({ disk }) => disk), metadataQueueLimit },
    { metadata, allocator, inFlight: io.inFlight, logger },
  );
  logger.info({ poolId: record.poolId, disks: disks.length, volumes: volumes.size }, 'opened pool');
  return new DiskPool({ poolId: record.poolId, extentSizeBytes: record.extentSizeBytes, disks, volumes, metadata, allocator, refcounts, io, flusher, nowMs, logger });
}

/**
 * Rebuild the in-memory maps, the allocator and the refcounts from the
 * durable maps (volumes and snapshots, issue 8). Whatever a crash left
 * allocated but unmapped (a copy-on-write or snapshot whose mapping never
 * became durable) is referenced by no map, so it is simply free: the
 * derived state cannot leak.
 */
async function loadVolumes(
  extentSizeBytes: number,
  metadata: MetadataStore,
  modules: { allocator: ExtentAllocator; refcounts: ExtentRefcounts },
): Promise<Map<string, VolumeState>> {
  const { allocator, refcounts } = modules;
  const volumes = new Map<string, VolumeState>();
  for (const [volumeId, volumeRecord] of await metadata.loadVolumes()) {
    volumes.set(volumeId, { sizeBytes: volumeRecord.sizeBytes, extents: new ExtentMap(), store: null, snapshots: new Map(), origin: volumeRecord.origin ?? null });
  }
  await loadSnapshotRecords(metadata, volumes);
  const referenced = new Set<number>();
  const reference = (location: number): void => {
    if (referenced.has(location)) {
      refcounts.addReference(location);
    } else {
      referenced.add(location);
      allocator.markUsed(location);
    }
  };
  await metadata.loadMappings((volumeId, logicalIndex, location) => {
    const state = volumes.get(volumeId);
    if (state === undefined || logicalIndex * extentSizeBytes >= state.sizeBytes) {
      throw new PlinthError('METADATA_CORRUPT', `pool metadata maps extent ${logicalIndex} of volume ${volumeId}, which does not exist or is past its end`, {
        volumeId,
        logicalIndex,
        diskIndex: locationDiskIndex(location),
      });
    }
    reference(location);
    state.extents.set(logicalIndex, location);
  });
  await metadata.loadSnapshotMappings((volumeId, snapshotId, logicalIndex, location) => {
    const snapshot = volumes.get(volumeId)?.snapshots.get(snapshotId);
    if (snapshot === undefined || logicalIndex * extentSizeBytes >= snapshot.sizeBytes) {
      throw new PlinthError('METADATA_CORRUPT', `pool metadata maps extent ${logicalIndex} of snapshot ${volumeId}@${snapshotId}, which does not exist or is past its end`, {
        volumeId,
        snapshotId,
        logicalIndex,
      });
    }
    reference(location);
    snapshot.extents.set(logicalIndex, location);
  });
  allocator.finishLoad();
  return volumes;
}

async function loadSnapshotRecords(metadata: MetadataStore, volumes: Map<string, VolumeState>): Promise<void> {
  for (const [volumeId, records] of await metadata.loadSnapshots()) {
    const state = volumes.get(volumeId);
    if (state === undefined) {
      throw new PlinthError('METADATA_CORRUPT', `pool metadata has snapshots of volume ${volumeId}, which does not exist`, { volumeId });
    }
    const oldestFirst = [...records].sort(([leftId, left], [rightId, right]) => left.createdAtMs - right.createdAtMs || (leftId < rightId ? -1 : 1));
    for (const [snapshotId, record] of oldestFirst) {
      state.snapshots.set(snapshotId, { snapshotId, sizeBytes: record.sizeBytes, createdAtMs: record.createdAtMs, extents: new ExtentMap(), device: null });
    }
  }
}
