import { open } from 'node:fs/promises';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { EXTENT, isAllZero, makeTempDir, openTestDb, openTestPool, pattern } from './pool-fixture.js';

/**
 * Reopen after a clean close and after a crash (pool abandoned without
 * flush or close, level closed underneath it). Unflushed writes may be lost;
 * flushed ones must survive; no volume may ever read another's bytes or
 * stale bytes in a range that was trimmed before a completed flush.
 */
const DATA_EXTENTS = 8;

async function setUp(t: Test) {
  const dir = await makeTempDir(t);
  const diskPath = join(dir, 'disk0');
  const disks = [{ path: diskPath, sizeBytes: (DATA_EXTENTS + 1) * EXTENT }];
  return { dir, diskPath, disks };
}

t.test('write + flush, close, reopen: data, maps and sizes intact', async (t) => {
  const { dir, disks } = await setUp(t);
  const db = openTestDb(t, dir);
  const pool = await openTestPool(t, db, { disks });
  const volume = await pool.openVolume('kept', 4 * EXTENT);
  await volume.write(EXTENT - 3, pattern(EXTENT + 6, 21));
  await pool.resizeVolume('kept', 6 * EXTENT);
  await volume.flush();
  await pool.close();
  await db.root.close();

  const db2 = openTestDb(t, dir);
  const reopened = await openTestPool(t, db2, { disks });
  t.equal(reopened.poolId, pool.poolId);
  t.equal(reopened.volumeAllocatedBytes('kept'), 3 * EXTENT);
  const again = await reopened.openVolume('kept', 6 * EXTENT);
  t.equal(again.sizeBytes, 6 * EXTENT, 'the resize survived');
  const back = Buffer.alloc(EXTENT + 6);
  await again.read(EXTENT - 3, back);
  t.same(back, pattern(EXTENT + 6, 21));
  t.same(await again.blockStatus(0, 6 * EXTENT), [
    { lengthBytes: 3 * EXTENT, hole: false, zero: false },
    { lengthBytes: 3 * EXTENT, hole: true, zero: true },
  ]);
  t.equal(reopened.stats().usedBytes, 3 * EXTENT, 'the allocator was rebuilt from the maps');
});

t.test('crash: flushed data survives, unflushed extents are not exposed to the next volume', async (t) => {
  const { dir, diskPath, disks } = await setUp(t);
  const db = openTestDb(t, dir);
  const pool = await openTestPool(t, db, { disks });
  const victim = await pool.openVolume('victim', DATA_EXTENTS * EXTENT);
  await victim.write(0, pattern(EXTENT, 31));
  await victim.flush();
  // Written but never flushed: the mapping of extents 1..4 is only in memory.
  await victim.write(EXTENT, pattern(4 * EXTENT, 32));
  await pool.closeWithoutFlush();
  await db.root.close();

  // The bytes did reach the file (same machine, page cache), so a careless
  // allocator would hand them out as "known zero" after the crash.
  const raw = Buffer.alloc(4 * EXTENT);
  const handle = await open(diskPath, 'r');
  await handle.read(raw, 0, raw.length, 2 * EXTENT);
  await handle.close();
  t.same(raw, pattern(4 * EXTENT, 32), 'stale bytes are physically on the disk');

  const db2 = openTestDb(t, dir);
  const reopened = await openTestPool(t, db2, { disks });
  const survivor = await reopened.openVolume('victim', DATA_EXTENTS * EXTENT);
  const flushed = Buffer.alloc(EXTENT);
  await survivor.read(0, flushed);
  t.same(flushed, pattern(EXTENT, 31), 'flushed data intact');
  t.equal(reopened.volumeAllocatedBytes('victim'), EXTENT, 'the unflushed mappings are gone');
  const lost = Buffer.alloc(4 * EXTENT, 1);
  await survivor.read(EXTENT, lost);
  t.ok(isAllZero(lost), 'an unflushed write that was lost reads as zeroes, not garbage');

  const other = await reopened.openVolume('other', (DATA_EXTENTS - 1) * EXTENT);
  for (let extent = 0; extent < DATA_EXTENTS - 1; extent += 1) {
    await other.write(extent * EXTENT, Buffer.from([7]));
  }
  t.equal(reopened.stats().usedBytes, DATA_EXTENTS * EXTENT, 'the other volume took every remaining extent, including the stale ones');
  const seen = Buffer.alloc((DATA_EXTENTS - 1) * EXTENT);
  await other.read(0, seen);
  for (let extent = 0; extent < DATA_EXTENTS - 1; extent += 1) {
    const slice = seen.subarray(extent * EXTENT, (extent + 1) * EXTENT);
    t.equal(slice[0], 7, `extent ${extent}: own byte`);
    t.ok(isAllZero(slice.subarray(1)), `extent ${extent}: zeroes elsewhere`);
  }
});

t.test('crash after trim + flush: the trimmed range stays zero', async (t) => {
  const { dir, disks } = await setUp(t);
  const db = openTestDb(t, dir);
  const pool = await openTestPool(t, db, { disks });
  const volume = await pool.openVolume('trimmed', 4 * EXTENT);
  await volume.write(0, pattern(4 * EXTENT, 41));
  await volume.flush();
  await volume.trim(EXTENT / 2, 2 * EXTENT);
  await volume.flush();
  await pool.closeWithoutFlush();
  await db.root.close();

  const db2 = openTestDb(t, dir);
  const reopened = await openTestPool(t, db2, { disks });
  const again = await reopened.openVolume('trimmed', 4 * EXTENT);
  const back = Buffer.alloc(4 * EXTENT);
  await again.read(0, back);
  const expected = pattern(4 * EXTENT, 41);
  expected.fill(0, EXTENT / 2, EXTENT / 2 + 2 * EXTENT);
  t.same(back, expected);
  t.equal(reopened.volumeAllocatedBytes('trimmed'), 3 * EXTENT, 'one whole extent was freed durably');
});

t.test('crash after delete: the volume and its extents are gone', async (t) => {
  const { dir, disks } = await setUp(t);
  const db = openTestDb(t, dir);
  const pool = await openTestPool(t, db, { disks });
  const volume = await pool.openVolume('doomed', 4 * EXTENT);
  await volume.write(0, pattern(4 * EXTENT, 51));
  await volume.close();
  await pool.deleteVolume('doomed');
  await pool.closeWithoutFlush();
  await db.root.close();

  const db2 = openTestDb(t, dir);
  const reopened = await openTestPool(t, db2, { disks });
  t.equal(reopened.stats().usedBytes, 0);
  const fresh = await reopened.openVolume('doomed', 4 * EXTENT);
  const back = Buffer.alloc(4 * EXTENT, 1);
  await fresh.read(0, back);
  t.ok(isAllZero(back), 'a new volume of the same name starts empty');
});

t.test('crash after a trim whose extents another volume reused: the trimmed volume never sees its bytes', async (t) => {
  const { dir, disks } = await setUp(t);
  const db = openTestDb(t, dir);
  const pool = await openTestPool(t, db, { disks });
  const first = await pool.openVolume('first', DATA_EXTENTS * EXTENT);
  await first.write(0, pattern(DATA_EXTENTS * EXTENT, 61));
  await first.flush();
  // Trim without a flush, then another volume needs those very extents.
  await first.trim(0, DATA_EXTENTS * EXTENT);
  const second = await pool.openVolume('second', DATA_EXTENTS * EXTENT);
  await second.write(0, pattern(DATA_EXTENTS * EXTENT, 62));
  await pool.closeWithoutFlush();
  await db.root.close();

  const db2 = openTestDb(t, dir);
  const reopened = await openTestPool(t, db2, { disks });
  const firstAgain = await reopened.openVolume('first', DATA_EXTENTS * EXTENT);
  const back = Buffer.alloc(DATA_EXTENTS * EXTENT);
  await firstAgain.read(0, back);
  const ownOld = pattern(DATA_EXTENTS * EXTENT, 61);
  const others = pattern(DATA_EXTENTS * EXTENT, 62);
  for (let extent = 0; extent < DATA_EXTENTS; extent += 1) {
    const slice = back.subarray(extent * EXTENT, (extent + 1) * EXTENT);
    const ok = isAllZero(slice) || slice.equals(ownOld.subarray(extent * EXTENT, (extent + 1) * EXTENT));
    t.ok(ok, `extent ${extent}: zero or the volume's own old data`);
    t.notOk(slice.subarray(0, 64).equals(others.subarray(extent * EXTENT, extent * EXTENT + 64)), `extent ${extent}: not the other volume's bytes`);
  }
});
