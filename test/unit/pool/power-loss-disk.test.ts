import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { failpoints, type FailpointEffects, processEffects, useFailpointEffects } from '../../../common/failpoints/failpoints.js';
import { isPlinthError, PlinthError } from '../../../common/plinth-error.js';
import { SeededPrng } from '../../../common/prng.js';
import type { VolumeStore } from '../../../blockdev/pool/pool-types.js';
import { diskLayerFromEnv, PowerLossDiskLayer } from '../../../blockdev/pool/power-loss-disk.js';
import { PROBE_BYTES } from '../../../blockdev/pool/superblock.js';
import { SECTOR_BYTES } from '../../../blockdev/pool/volatile-write-cache.js';
import { EXTENT, makeTempDir, openTestDb, openTestPool, silentLogger } from './pool-fixture.js';

/**
 * The power-loss disk layer under a real pool (issue 7): a seeded workload of
 * writes, trims and flushes, a power cut (at the end, or from the `power-cut`
 * failpoint inside a disk write or sync), then the pool is reopened on the
 * same files without the layer. Flushed data must be intact; everything
 * else reads, per sector, as one version written since the last completed
 * flush or the flushed one; the pool opens (no METADATA_CORRUPT).
 */

const VOLUME_EXTENTS = 8;
const VOLUME_BYTES = VOLUME_EXTENTS * EXTENT;
const SECTORS = VOLUME_BYTES / SECTOR_BYTES;
const OPERATIONS = 120;
/** Written over a whole disk before the pool sees it: bytes no volume ever wrote, so none may ever be read. */
const GARBAGE_TAG = 0xdeadbeef;

/** A sector of `tag`: the u32 repeated, so a mix of two versions in one sector shows. Tag 0 = zeroes. */
function sectors(count: number, tag: number): Buffer {
  const bytes = Buffer.alloc(count * SECTOR_BYTES);
  for (let offset = 0; offset < bytes.length; offset += 4) bytes.writeUInt32LE(tag, offset);
  return bytes;
}

/** What each sector may hold after a cut: its value at the last completed flush, or anything written since. */
class SectorModel {
  readonly current = new Array<number>(SECTORS).fill(0);
  allowed: Array<Set<number>> = Array.from({ length: SECTORS }, () => new Set([0]));

  wrote(firstSector: number, count: number, tag: number): void {
    for (let sector = firstSector; sector < firstSector + count; sector += 1) {
      this.current[sector] = tag;
      this.allowed[sector]?.add(tag);
    }
  }

  flushed(): void {
    this.allowed = this.current.map((tag) => new Set([tag]));
  }
}

interface Cut {
  readonly name: string;
  /** A failpoint spec, or null to cut after the workload. */
  readonly failpoint: string | null;
}

async function runWorkload(volume: VolumeStore, model: SectorModel, prng: SeededPrng): Promise<void> {
  let tag = 1;
  for (let step = 0; step < OPERATIONS; step += 1) {
    const choice = prng.nextInt(10);
    if (choice === 0) {
      await volume.flush();
      model.flushed();
    } else if (choice === 1) {
      // A whole-extent TRIM frees the extent (reused later, not known zero): the reuse path under a cut.
      const extent = prng.nextInt(VOLUME_EXTENTS);
      const perExtent = EXTENT / SECTOR_BYTES;
      model.wrote(extent * perExtent, perExtent, 0);
      await volume.trim(extent * EXTENT, EXTENT);
    } else {
      const count = 1 + prng.nextInt(24);
      const first = prng.nextInt(SECTORS - count);
      model.wrote(first, count, tag);
      await volume.write(first * SECTOR_BYTES, sectors(count, tag));
      tag += 1;
    }
  }
}

async function checkAfterCut(t: Test, volume: VolumeStore, model: SectorModel, label: string): Promise<void> {
  const back = Buffer.alloc(VOLUME_BYTES);
  await volume.read(0, back);
  const problems: string[] = [];
  for (let sector = 0; sector < SECTORS && problems.length < 5; sector += 1) {
    const bytes = back.subarray(sector * SECTOR_BYTES, (sector + 1) * SECTOR_BYTES);
    const tag = bytes.readUInt32LE(0);
    if (!bytes.equals(sectors(1, tag))) problems.push(`sector ${sector} mixes versions`);
    else if (!(model.allowed[sector]?.has(tag) ?? false)) {
      problems.push(`sector ${sector} holds version ${tag}; allowed ${[...(model.allowed[sector] ?? [])].join(',')}`);
    }
  }
  t.same(problems, [], `${label}: every sector is its flushed version or one written since`);
}

async function cutAndReopen(t: Test, cut: Cut, seed: number): Promise<void> {
  const dir = await makeTempDir(t);
  // Odd seeds: a sparse new file (fresh extents known zero). Even seeds: a
  // disk full of garbage and just one spare extent, so every allocation
  // zero-fills and trimmed extents are soon reused: a mapping made durable
  // before its zero-fill would expose the garbage or another extent's data.
  const garbage = seed % 2 === 0;
  const diskPath = join(dir, 'disk0');
  const diskBytes = (VOLUME_EXTENTS + 2) * EXTENT;
  // The superblock probe's first PROBE_BYTES stay zero: a disk with foreign bytes there is refused.
  if (garbage) await writeFile(diskPath, Buffer.concat([Buffer.alloc(PROBE_BYTES), sectors((diskBytes - PROBE_BYTES) / SECTOR_BYTES, GARBAGE_TAG)]));
  const disks = [garbage ? { path: diskPath } : { path: diskPath, sizeBytes: diskBytes }];
  const layer = new PowerLossDiskLayer({ seed }, { logger: silentLogger, registerPowerCut: () => () => undefined });
  const effects: FailpointEffects = {
    ...processEffects,
    powerCut(name: string): never {
      layer.cutPower();
      throw new PlinthError('IO_ERROR', `test power cut at ${name}`, { failpoint: name });
    },
  };
  const restoreEffects = useFailpointEffects(effects);
  t.teardown(() => {
    failpoints.disarmAll();
    restoreEffects();
  });

  const db = openTestDb(t, dir);
  const pool = await openTestPool(t, db, { disks, diskLayer: layer });
  const volume = await pool.openVolume('vol', VOLUME_BYTES);
  const model = new SectorModel();
  if (cut.failpoint !== null) failpoints.armFromText(cut.failpoint);
  try {
    await runWorkload(volume, model, new SeededPrng(seed));
    if (cut.failpoint === null) layer.cutPower();
    else t.fail(`${cut.name}: the failpoint never fired`);
  } catch (err) {
    if (!isPlinthError(err, 'IO_ERROR')) throw err;
  }
  failpoints.disarmAll();
  await pool.closeWithoutFlush();
  await db.root.close();

  const db2 = openTestDb(t, dir);
  const reopened = await openTestPool(t, db2, { disks });
  await checkAfterCut(t, await reopened.openVolume('vol', VOLUME_BYTES), model, `${cut.name}, seed ${seed}`);
}

const CUTS: readonly Cut[] = [
  { name: 'cut after the workload', failpoint: null },
  { name: 'cut inside the 3rd disk sync', failpoint: 'disk.sync=power-cut:skip=2' },
  { name: 'cut inside the 5th disk sync', failpoint: 'disk.sync=power-cut:skip=4' },
  { name: 'cut between the data sync and the map batch of the 3rd flush', failpoint: 'pool.flush.after-data-sync=power-cut:skip=2' },
  { name: 'cut inside the 40th disk write', failpoint: 'disk.write=power-cut:skip=40' },
  { name: 'cut inside the 90th disk write', failpoint: 'disk.write=power-cut:skip=90' },
];

for (const cut of CUTS) {
  t.test(cut.name, async (t) => {
    for (let seed = 1; seed <= 4; seed += 1) {
      await t.test(`seed ${seed}`, (t) => cutAndReopen(t, cut, seed));
    }
  });
}

t.test('until the cut the layer reads like a disk; afterwards the disk is dead', async (t) => {
  const dir = await makeTempDir(t);
  const disks = [{ path: join(dir, 'disk0'), sizeBytes: 4 * EXTENT }];
  const layer = new PowerLossDiskLayer({ seed: 3 }, { logger: silentLogger, registerPowerCut: () => () => undefined });
  const db = openTestDb(t, dir);
  const pool = await openTestPool(t, db, { disks, diskLayer: layer, inlineIo: { maxInlineBytes: 65536 } });
  const volume = await pool.openVolume('vol', 2 * EXTENT);
  await volume.write(100, sectors(3, 7));
  t.ok(volume.writeInline?.(100, sectors(1, 8)), 'the inline fast path runs through the layer too');
  const back = Buffer.alloc(3 * SECTOR_BYTES);
  await volume.read(100, back);
  t.same(back, Buffer.concat([sectors(1, 8), sectors(2, 7)]), 'reads see un-synced writes');
  layer.cutPower();
  await t.rejects(volume.read(100, back), { code: 'IO_ERROR' }, 'no I/O after the power is gone');
});

t.test('PLINTH_TEST_DISK parsing', async (t) => {
  t.equal(diskLayerFromEnv({}, silentLogger), undefined);
  t.equal(diskLayerFromEnv({ PLINTH_TEST_DISK: 'power-loss:seed=5:cache=1MiB' }, silentLogger)?.name, 'power-loss');
  t.throws(() => diskLayerFromEnv({ PLINTH_TEST_DISK: 'flaky' }, silentLogger), { code: 'CONFIG_INVALID' });
  t.throws(() => diskLayerFromEnv({ PLINTH_TEST_DISK: 'power-loss:seed=x' }, silentLogger), { code: 'CONFIG_INVALID' });
});
