import { join } from 'node:path';
import t, { type Test } from 'tap';
import { failpoints, type FailpointEffects, processEffects, useFailpointEffects } from '../../../common/failpoints/failpoints.js';
import { isPlinthError, PlinthError } from '../../../common/plinth-error.js';
import type { DiskPool } from '../../../blockdev/pool/disk-pool.js';
import type { VolumeStore } from '../../../blockdev/pool/pool-types.js';
import { PowerLossDiskLayer } from '../../../blockdev/pool/power-loss-disk.js';
import { SECTOR_BYTES } from '../../../blockdev/pool/volatile-write-cache.js';
import { EXTENT, makeTempDir, openTestDb, openTestPool, pattern, silentLogger, type TestDb } from './pool-fixture.js';

/**
 * Snapshots across power cuts (issue 8, docs/snapshots.md "Crash rules"):
 * the power-loss disk layer (power-loss-disk.ts) loses every unsynced write
 * or a seeded part of it, the pool is reopened on the same files without the
 * layer. A snapshot must read its exact data, the volume its last flushed
 * state (or, per sector, a write made since), and the pool's used space must
 * be exactly the distinct extents the durable maps reference: whatever a
 * crash left allocated but unmapped is free again.
 */

const VOLUME_EXTENTS = 6;
const VOLUME_BYTES = VOLUME_EXTENTS * EXTENT;
const BASE = pattern(VOLUME_BYTES, 101);
const SECOND = pattern(VOLUME_BYTES, 102);

interface CrashRig {
  readonly pool: DiskPool;
  readonly volume: VolumeStore;
  readonly layer: PowerLossDiskLayer;
  /** Cut the power now (if not already), close without flushing, reopen on the same files. */
  reopen(): Promise<DiskPool>;
}

async function crashRig(t: Test, seed: number): Promise<CrashRig> {
  const dir = await makeTempDir(t);
  const disks = [{ path: join(dir, 'disk0'), sizeBytes: 40 * EXTENT }];
  const layer = new PowerLossDiskLayer({ seed }, { logger: silentLogger, registerPowerCut: () => () => undefined });
  const restoreEffects = useFailpointEffects({
    ...processEffects,
    powerCut(name: string): never {
      layer.cutPower();
      throw new PlinthError('IO_ERROR', `test power cut at ${name}`, { failpoint: name });
    },
  } satisfies FailpointEffects);
  t.teardown(() => {
    failpoints.disarmAll();
    restoreEffects();
  });
  const db: TestDb = openTestDb(t, dir);
  const pool = await openTestPool(t, db, { disks, diskLayer: layer });
  const volume = await pool.openVolume('vol', VOLUME_BYTES);
  await volume.write(0, BASE);
  await volume.flush();
  return {
    pool,
    volume,
    layer,
    async reopen(): Promise<DiskPool> {
      failpoints.disarmAll();
      layer.cutPower();
      await pool.closeWithoutFlush();
      await db.root.close();
      return openTestPool(t, openTestDb(t, dir), { disks });
    },
  };
}

async function readAll(device: { sizeBytes: number; read(offset: number, target: Buffer): Promise<void> }): Promise<Buffer> {
  const bytes = Buffer.alloc(device.sizeBytes);
  await device.read(0, bytes);
  return bytes;
}

/** Every sector equals the same sector of one of `versions`. */
function sectorsFrom(t: Test, actual: Buffer, versions: readonly Buffer[], what: string): void {
  for (let offset = 0; offset < actual.length; offset += SECTOR_BYTES) {
    const sector = actual.subarray(offset, offset + SECTOR_BYTES);
    if (!versions.some((version) => version.subarray(offset, offset + SECTOR_BYTES).equals(sector))) {
      t.fail(`${what}: sector at ${offset} matches no allowed version`);
      return;
    }
  }
  t.pass(`${what}: every sector is an allowed version`);
}

/** Distinct physical extents the reopened pool's maps reference, counted through the public API. */
function expectUsedExtents(t: Test, pool: DiskPool, extents: number, what: string): void {
  t.equal(pool.stats().usedBytes, extents * EXTENT, `${what}: used space is exactly the referenced extents (nothing leaked)`);
}

async function expectFailure(promise: Promise<unknown>): Promise<void> {
  try {
    await promise;
  } catch (err) {
    if (isPlinthError(err, 'IO_ERROR')) return;
    throw err;
  }
  throw new PlinthError('INTERNAL', 'the power cut did not fail the operation');
}

for (const seed of [1, 2, 3]) {
  t.test(`seed ${seed}: cut after unflushed copy-on-write writes`, async (t) => {
    const rig = await crashRig(t, seed);
    await rig.pool.createSnapshot('vol', 'snap');
    await rig.volume.write(0, SECOND); // every extent copied, none of it flushed
    await rig.volume.write(EXTENT + 7, pattern(300, 103));
    const pool = await rig.reopen();
    t.ok((await readAll(await pool.openSnapshot('vol', 'snap'))).equals(BASE), 'the snapshot reads its exact data');
    t.ok((await readAll(await pool.openVolume('vol', VOLUME_BYTES))).equals(BASE), 'the volume reads its last flushed state');
    expectUsedExtents(t, pool, VOLUME_EXTENTS, 'the unflushed copies were reclaimed');
  });

  t.test(`seed ${seed}: cut after a flushed copy-on-write and unflushed in-place writes`, async (t) => {
    const rig = await crashRig(t, seed);
    await rig.pool.createSnapshot('vol', 'snap');
    await rig.volume.write(0, SECOND);
    await rig.volume.flush();
    const third = pattern(VOLUME_BYTES, 104);
    await rig.volume.write(0, third); // in place now: the copies are the volume's own
    const pool = await rig.reopen();
    t.ok((await readAll(await pool.openSnapshot('vol', 'snap'))).equals(BASE), 'the snapshot reads its exact data');
    sectorsFrom(t, await readAll(await pool.openVolume('vol', VOLUME_BYTES)), [SECOND, third], 'the volume');
    expectUsedExtents(t, pool, 2 * VOLUME_EXTENTS, 'volume and snapshot');
  });

  t.test(`seed ${seed}: cut inside the snapshot's flush (before its map is written)`, async (t) => {
    const rig = await crashRig(t, seed);
    await rig.volume.write(2 * EXTENT, pattern(EXTENT, 105)); // unflushed, in place
    failpoints.armFromText('pool.flush.after-data-sync=power-cut');
    await expectFailure(rig.pool.createSnapshot('vol', 'snap'));
    t.same(rig.pool.listSnapshots('vol'), [], 'the failed snapshot was rolled back in memory');
    const pool = await rig.reopen();
    t.same(pool.listSnapshots('vol'), [], 'no snapshot after the cut');
    sectorsFrom(t, await readAll(await pool.openVolume('vol', VOLUME_BYTES)), [BASE, Buffer.concat([BASE.subarray(0, 2 * EXTENT), pattern(EXTENT, 105), BASE.subarray(3 * EXTENT)])], 'the volume');
    expectUsedExtents(t, pool, VOLUME_EXTENTS, 'no snapshot references');
  });

  t.test(`seed ${seed}: cut while deleting a snapshot whose extents the volume copied but never flushed`, async (t) => {
    const rig = await crashRig(t, seed);
    await rig.pool.createSnapshot('vol', 'snap');
    await rig.volume.write(0, SECOND); // the copies' mappings are only queued
    failpoints.armFromText('pool.flush.after-data-sync=power-cut');
    // The snapshot's deletion is durable before the flush that would make the copies' mappings durable.
    await expectFailure(rig.pool.deleteSnapshot('vol', 'snap'));
    const pool = await rig.reopen();
    t.same(pool.listSnapshots('vol'), [], 'the deletion is durable');
    t.ok((await readAll(await pool.openVolume('vol', VOLUME_BYTES))).equals(BASE), 'the volume still reads its flushed extents, which the deletion did not release');
    expectUsedExtents(t, pool, VOLUME_EXTENTS, 'the copies were reclaimed');
  });

  t.test(`seed ${seed}: cut after a revert and a clone`, async (t) => {
    const rig = await crashRig(t, seed);
    await rig.pool.createSnapshot('vol', 'snap');
    await rig.volume.write(0, SECOND);
    await rig.volume.close();
    await rig.pool.revertVolume('vol', 'snap');
    await rig.pool.cloneVolume('vol', 'snap', 'clone');
    const clone = await rig.pool.openVolume('clone', VOLUME_BYTES);
    await clone.write(0, pattern(100, 106)); // unflushed copy-on-write in the clone
    const pool = await rig.reopen();
    t.ok((await readAll(await pool.openVolume('vol', VOLUME_BYTES))).equals(BASE), 'the revert is durable');
    t.ok((await readAll(await pool.openVolume('clone', VOLUME_BYTES))).equals(BASE), 'the clone reads its flushed state');
    expectUsedExtents(t, pool, VOLUME_EXTENTS, 'volume, snapshot and clone share every extent');
  });
}

t.test('a snapshot whose flush fails is rolled back; the pool keeps working', async (t) => {
  const rig = await crashRig(t, 9);
  failpoints.armFromText('pool.flush.after-data-sync=error(EIO):times=1');
  await t.rejects(rig.pool.createSnapshot('vol', 'snap'), { code: 'IO_ERROR' });
  t.same(rig.pool.listSnapshots('vol'), []);
  await rig.volume.write(0, SECOND);
  t.equal(rig.pool.stats().usedBytes, VOLUME_BYTES, 'no extent stayed shared: the write went in place');
  await rig.pool.createSnapshot('vol', 'snap');
  await rig.volume.write(0, BASE);
  t.ok((await readAll(await rig.pool.openSnapshot('vol', 'snap'))).equals(SECOND), 'a retry takes the snapshot');
});
