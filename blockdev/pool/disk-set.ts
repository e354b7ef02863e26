import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import { PlinthError } from '../../common/plinth-error.js';
import { type Disk, openDisk } from './disk.js';
import type { DiskLayer } from './disk-file-io.js';
import { DEFAULT_INLINE_IO_OPTIONS, type InlineIoOptions } from './inline-io-policy.js';
import { FIRST_DATA_EXTENT } from './extent-allocator.js';
import { MAX_DISKS } from './extent-map.js';
import type { DiskRecord, MetadataStore, PoolRecord } from './metadata-store.js';
import type { DiskSpec } from './pool-types.js';
import { encodeSuperblock, PROBE_BYTES, probeSuperblock, type Superblock } from './superblock.js';

/**
 * Attach the configured disks to the pool: match each to its pool record by
 * the disk UUID in its superblock, refuse what is foreign, of another pool,
 * or corrupt, report recorded disks that are missing, and initialise blank
 * ones.
 *
 * Crash safety of initialisation: the pool record exists before any disk is
 * touched; a new disk's high-water mark is saved, then its superblock is
 * written and fdatasync'd, and only then is the disk added to the pool
 * record. A crash in between leaves a disk whose superblock names our pool
 * but that the record does not list: such a half-initialised disk holds no
 * mapped data and is initialised again (conservatively, as not known zero).
 */

export interface AttachedDisk {
  readonly disk: Disk;
  readonly record: DiskRecord;
}

interface Candidate {
  readonly disk: Disk;
  readonly superblock: Superblock | null;
}

export async function attachDisks(
  options: { specs: readonly DiskSpec[]; record: PoolRecord; inlineIo?: InlineIoOptions; layer?: DiskLayer },
  modules: { metadata: MetadataStore; logger: Logger },
): Promise<{ disks: AttachedDisk[]; record: PoolRecord }> {
  const inlineIo = options.inlineIo ?? DEFAULT_INLINE_IO_OPTIONS;
  const opened: Disk[] = [];
  try {
    const candidates: Candidate[] = [];
    for (const spec of options.specs) {
      const io = { inlineIo, ...(options.layer === undefined ? {} : { layer: options.layer }) };
      const candidate = await openCandidate(spec, options.record, io, modules.logger);
      opened.push(candidate.disk);
      candidates.push(candidate);
    }
    const { matched, blank } = matchCandidates(candidates, options.record, modules.logger);
    let record = options.record;
    if (matched.some((attached) => !record.disks.includes(attached.record))) {
      // Some disk was found at a new path: remember where it is now.
      record = { ...record, disks: matched.map((attached) => attached.record).sort((a, b) => a.index - b.index) };
      await modules.metadata.savePoolRecord(record);
    }
    for (const disk of blank) {
      const attached = await initialiseDisk(disk, record, modules);
      record = { ...record, disks: [...record.disks, attached.record] };
      await modules.metadata.savePoolRecord(record);
      matched.push(attached);
    }
    for (const { disk, record: diskRecord } of matched) {
      disk.identify({ diskIndex: diskRecord.index, extentSizeBytes: record.extentSizeBytes });
    }
    return { disks: matched, record };
  } catch (err) {
    await Promise.all(
      opened.map((disk) => disk.close().catch((closeErr: unknown) => modules.logger.warn({ err: closeErr, path: disk.path }, 'closing disk after a failed attach failed'))),
    );
    throw err;
  }
}

async function openCandidate(
  spec: DiskSpec,
  record: PoolRecord,
  io: { inlineIo: InlineIoOptions; layer?: DiskLayer },
  logger: Logger,
): Promise<Candidate> {
  const path = resolve(spec.path);
  const recordedHere = record.disks.find((disk) => disk.path === path);
  const mayCreate = recordedHere === undefined;
  const disk = await openDisk({ path, mayCreate, ...io, ...(spec.sizeBytes === undefined ? {} : { sizeBytes: spec.sizeBytes }) }, logger);
  const head = Buffer.alloc(Math.min(PROBE_BYTES, disk.sizeBytes));
  await disk.read(head, 0, head.length, 0);
  const probe = probeSuperblock(head, path);
  if (probe.kind === 'blank') {
    if (recordedHere !== undefined) {
      throw new PlinthError('DISK_CORRUPT', `pool disk ${path} (disk ${recordedHere.id}) has lost its superblock: its first bytes are zero`, {
        path,
        diskId: recordedHere.id,
      });
    }
    return { disk, superblock: null };
  }
  const superblock = probe.superblock;
  if (superblock.poolId !== record.poolId) {
    throw new PlinthError('DISK_WRONG_POOL', `disk ${path} belongs to pool ${superblock.poolId}, not to this pool ${record.poolId}`, {
      path,
      diskPoolId: superblock.poolId,
      poolId: record.poolId,
    });
  }
  if (superblock.extentSizeBytes !== record.extentSizeBytes) {
    throw new PlinthError('DISK_CORRUPT', `disk ${path}: superblock extent size ${superblock.extentSizeBytes} differs from the pool's ${record.extentSizeBytes}`, {
      path,
    });
  }
  return { disk, superblock };
}

/** Pair candidates with recorded disks; returns the matched ones and those to initialise. */
function matchCandidates(candidates: readonly Candidate[], record: PoolRecord, logger: Logger): { matched: AttachedDisk[]; blank: Disk[] } {
  const matched: AttachedDisk[] = [];
  const blank: Disk[] = [];
  const seen = new Set<string>();
  for (const { disk, superblock } of candidates) {
    if (superblock === null) {
      blank.push(disk);
      continue;
    }
    const recorded = record.disks.find((candidate) => candidate.id === superblock.diskId);
    if (recorded === undefined) {
      logger.warn({ path: disk.path, diskId: superblock.diskId }, 'disk carries this pool\'s superblock but is not recorded (initialisation was interrupted); initialising it again');
      blank.push(disk);
      continue;
    }
    if (seen.has(recorded.id)) {
      throw new PlinthError('INVALID_ARGUMENT', `disk ${recorded.id} is listed twice (second time as ${disk.path})`, { path: disk.path, diskId: recorded.id });
    }
    seen.add(recorded.id);
    if (superblock.diskIndex !== recorded.index || superblock.capacityBytes !== recorded.capacityBytes || disk.sizeBytes < recorded.capacityBytes) {
      throw new PlinthError('DISK_CORRUPT', `disk ${disk.path}: superblock or size disagrees with the pool record for disk ${recorded.id}`, {
        path: disk.path,
        diskId: recorded.id,
      });
    }
    if (recorded.path !== disk.path) {
      logger.info({ diskId: recorded.id, from: recorded.path, to: disk.path }, 'pool disk found at a new path');
    }
    matched.push({ disk, record: recorded.path === disk.path ? recorded : { ...recorded, path: disk.path } });
  }
  const missing = record.disks.filter((recorded) => !seen.has(recorded.id));
  if (missing.length > 0) {
    throw new PlinthError('DISK_MISSING', `pool disk(s) missing: ${missing.map((disk) => `${disk.id} (last seen at ${disk.path})`).join(', ')}`, {
      missing: missing.map((disk) => ({ id: disk.id, path: disk.path })),
    });
  }
  return { matched, blank };
}

async function initialiseDisk(disk: Disk, record: PoolRecord, modules: { metadata: MetadataStore; logger: Logger }): Promise<AttachedDisk> {
  const extentCount = Math.floor(disk.sizeBytes / record.extentSizeBytes);
  if (extentCount < FIRST_DATA_EXTENT + 1) {
    throw new PlinthError('INVALID_ARGUMENT', `disk ${disk.path} (${disk.sizeBytes} bytes) is smaller than two extents of ${record.extentSizeBytes} bytes`, {
      path: disk.path,
      sizeBytes: disk.sizeBytes,
    });
  }
  const index = record.disks.reduce((highest, recorded) => Math.max(highest, recorded.index + 1), 0);
  if (index >= MAX_DISKS) {
    throw new PlinthError('INVALID_ARGUMENT', `a pool holds at most ${MAX_DISKS} disks`, { path: disk.path });
  }
  const diskRecord: DiskRecord = { id: randomUUID(), index, path: disk.path, kind: disk.kind, capacityBytes: disk.sizeBytes };
  // Only a sparse file we sized ourselves is known to read as zeroes.
  await modules.metadata.saveHighWaterMark(index, disk.createdSparse ? FIRST_DATA_EXTENT : extentCount);
  const superblock = encodeSuperblock({
    poolId: record.poolId,
    diskId: diskRecord.id,
    extentSizeBytes: record.extentSizeBytes,
    diskIndex: index,
    capacityBytes: disk.sizeBytes,
  });
  await disk.write(superblock, 0, superblock.length, 0);
  await disk.sync();
  modules.logger.info({ path: disk.path, diskId: diskRecord.id, index, sizeBytes: disk.sizeBytes, kind: disk.kind }, 'initialised pool disk');
  return { disk, record: diskRecord };
}
