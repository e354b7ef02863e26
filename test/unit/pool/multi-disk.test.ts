import { join } from 'node:path';
import t from 'tap';
import { EXTENT, makeTempDir, openTestDb, openTestPool, pattern } from './pool-fixture.js';

/** Several disks: allocation spreads, stats add up, disks are found by identity not order. */

t.test('allocation spreads across disks and per-disk stats add up', async (t) => {
  const dir = await makeTempDir(t);
  const db = openTestDb(t, dir);
  const disks = [
    { path: join(dir, 'disk0'), sizeBytes: 17 * EXTENT },
    { path: join(dir, 'disk1'), sizeBytes: 17 * EXTENT },
  ];
  const pool = await openTestPool(t, db, { disks });
  const volume = await pool.openVolume('spread', 32 * EXTENT);
  await volume.write(0, pattern(8 * EXTENT, 81));
  const stats = pool.stats();
  t.equal(stats.disks.length, 2);
  t.same(
    stats.disks.map((disk) => disk.usedBytes),
    [4 * EXTENT, 4 * EXTENT],
    'eight extents split evenly',
  );
  t.same(
    stats.disks.map((disk) => disk.capacityBytes),
    [16 * EXTENT, 16 * EXTENT],
    'capacity excludes the superblock extent',
  );
  t.equal(stats.capacityBytes, stats.disks.reduce((sum, disk) => sum + disk.capacityBytes, 0));
  t.equal(stats.usedBytes, stats.disks.reduce((sum, disk) => sum + disk.usedBytes, 0));
  t.equal(stats.usedBytes, volume.allocatedBytes());
  t.ok(stats.disks.every((disk) => disk.kind === 'file' && disk.extentSizeBytes === EXTENT));
  t.not(stats.disks[0]?.id, stats.disks[1]?.id);

  // Fill the pool completely: 32 data extents over both disks.
  await volume.write(8 * EXTENT, pattern(24 * EXTENT, 82));
  t.same(pool.stats().disks.map((disk) => disk.usedBytes), [16 * EXTENT, 16 * EXTENT]);
  await t.rejects(pool.openVolume('more', EXTENT).then((more) => more.write(0, Buffer.from('x'))), { code: 'NO_SPACE' });
  await pool.close();
  await db.root.close();

  // Reopen with the disks listed in the other order: matched by disk UUID.
  const db2 = openTestDb(t, dir);
  const reopened = await openTestPool(t, db2, { disks: [...disks].reverse() });
  t.same(reopened.stats().disks.map((disk) => disk.usedBytes), [16 * EXTENT, 16 * EXTENT]);
  const again = await reopened.openVolume('spread', 32 * EXTENT);
  const back = Buffer.alloc(32 * EXTENT);
  await again.read(0, back);
  t.same(back.subarray(0, 8 * EXTENT), pattern(8 * EXTENT, 81));
  t.same(back.subarray(8 * EXTENT), pattern(24 * EXTENT, 82));
});

t.test('a disk added later joins the pool and takes new allocations', async (t) => {
  const dir = await makeTempDir(t);
  const db = openTestDb(t, dir);
  const first = { path: join(dir, 'disk0'), sizeBytes: 5 * EXTENT };
  const pool = await openTestPool(t, db, { disks: [first] });
  const volume = await pool.openVolume('grow', 8 * EXTENT);
  await volume.write(0, pattern(4 * EXTENT, 91));
  await pool.close();
  await db.root.close();

  const db2 = openTestDb(t, dir);
  const second = { path: join(dir, 'disk1'), sizeBytes: 5 * EXTENT };
  const grown = await openTestPool(t, db2, { disks: [first, second] });
  t.equal(grown.stats().capacityBytes, 8 * EXTENT);
  const again = await grown.openVolume('grow', 8 * EXTENT);
  await again.write(4 * EXTENT, pattern(4 * EXTENT, 92));
  t.same(grown.stats().disks.map((disk) => disk.usedBytes), [4 * EXTENT, 4 * EXTENT]);
  const back = Buffer.alloc(8 * EXTENT);
  await again.read(0, back);
  t.same(back.subarray(0, 4 * EXTENT), pattern(4 * EXTENT, 91));
  t.same(back.subarray(4 * EXTENT), pattern(4 * EXTENT, 92));
});
