import { join } from 'node:path';
import t, { type Test } from 'tap';
import type { VolumeStore } from '../../../blockdev/pool/pool-types.js';
import { EXTENT, isAllZero, makeTempDir, openTestDb, openTestPool, pattern } from './pool-fixture.js';

/**
 * Extents come back to the pool holding old bytes. Whatever the path back
 * (delete, trim, writeZeroes), the next volume must read zeroes wherever it
 * did not write. The disk has 8 data extents, so the second volume is forced
 * onto the extents the first one used.
 */
const DATA_EXTENTS = 8;
const DISK_BYTES = (DATA_EXTENTS + 1) * EXTENT;

async function fullPool(t: Test) {
  const dir = await makeTempDir(t);
  const db = openTestDb(t, dir);
  const pool = await openTestPool(t, db, { disks: [{ path: join(dir, 'disk0'), sizeBytes: DISK_BYTES }] });
  const first = await pool.openVolume('first', DATA_EXTENTS * EXTENT);
  await first.write(0, pattern(DATA_EXTENTS * EXTENT, 11));
  t.equal(pool.stats().usedBytes, DATA_EXTENTS * EXTENT, 'the first volume fills the disk');
  return { pool, first };
}

async function expectOnlyOwnBytes(t: Test, volume: VolumeStore): Promise<void> {
  // One small write per extent, at a different offset each time.
  for (let extent = 0; extent < DATA_EXTENTS; extent += 1) {
    await volume.write(extent * EXTENT + extent * 1000, pattern(100, 200 + extent));
  }
  for (let extent = 0; extent < DATA_EXTENTS; extent += 1) {
    const back = Buffer.alloc(EXTENT);
    await volume.read(extent * EXTENT, back);
    const own = extent * 1000;
    t.ok(isAllZero(back.subarray(0, own)), `extent ${extent}: zeroes before the write`);
    t.same(back.subarray(own, own + 100), pattern(100, 200 + extent), `extent ${extent}: own bytes`);
    t.ok(isAllZero(back.subarray(own + 100)), `extent ${extent}: zeroes after the write`);
  }
}

t.test('after a delete, the next volume gets the same extents and reads zeroes where it did not write', async (t) => {
  const { pool, first } = await fullPool(t);
  await first.close();
  await pool.deleteVolume('first');
  t.equal(pool.stats().usedBytes, 0, 'delete frees every extent');
  t.equal(pool.volumeAllocatedBytes('first'), 0);
  const second = await pool.openVolume('second', DATA_EXTENTS * EXTENT);
  await expectOnlyOwnBytes(t, second);
  t.equal(pool.stats().usedBytes, DATA_EXTENTS * EXTENT, 'the second volume reused all of them');
});

t.test('after a trim and a flush, another volume reuses the extents safely', async (t) => {
  const { pool, first } = await fullPool(t);
  await first.trim(0, DATA_EXTENTS * EXTENT);
  await first.flush();
  const second = await pool.openVolume('second', DATA_EXTENTS * EXTENT);
  await expectOnlyOwnBytes(t, second);
  const stillZero = Buffer.alloc(DATA_EXTENTS * EXTENT, 1);
  await first.read(0, stillZero);
  t.ok(isAllZero(stillZero), 'the trimmed volume does not see the new owner\'s bytes');
});

t.test('after writeZeroes (punching) the extents are reused safely too', async (t) => {
  const { pool, first } = await fullPool(t);
  await first.writeZeroes(0, DATA_EXTENTS * EXTENT, { fua: true });
  const second = await pool.openVolume('second', DATA_EXTENTS * EXTENT);
  await expectOnlyOwnBytes(t, second);
});

t.test('deleting an open volume is refused; deleting an unknown one is a no-op', async (t) => {
  const { pool } = await fullPool(t);
  await t.rejects(pool.deleteVolume('first'), { code: 'VOLUME_ATTACHED' });
  await pool.deleteVolume('never-existed');
  t.equal(pool.stats().usedBytes, DATA_EXTENTS * EXTENT);
});
