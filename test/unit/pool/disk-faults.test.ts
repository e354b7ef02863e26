import { join } from 'node:path';
import t, { type Test } from 'tap';
import { failpoints } from '../../../common/failpoints/failpoints.js';
import type { DiskPool } from '../../../blockdev/pool/disk-pool.js';
import { EXTENT, makeTempDir, openTestDb, openTestPool, pattern } from './pool-fixture.js';

/**
 * Disk faults from the failpoint registry at the Disk's I/O (issue 7):
 * disk.read/disk.write error(EIO) on one disk extent, disk.write
 * error(ENOSPC) as a full disk, disk.sync stall(MS) as a stalled disk. The
 * errors are the pool's own codes, which the NBD errno table and the
 * replica protocol already carry.
 */

async function poolWithTwoExtents(t: Test): Promise<{ pool: DiskPool; extentOf: (logical: number) => number }> {
  t.teardown(() => failpoints.disarmAll());
  const dir = await makeTempDir(t);
  const db = openTestDb(t, dir);
  const pool = await openTestPool(t, db, { disks: [{ path: join(dir, 'disk0'), sizeBytes: 8 * EXTENT }] });
  const volume = await pool.openVolume('vol', 4 * EXTENT);
  // A fresh pool hands out disk extents in order from 1 (0 holds the superblock).
  await volume.write(0, pattern(EXTENT, 1));
  await volume.write(EXTENT, pattern(EXTENT, 2));
  await volume.flush();
  return { pool, extentOf: (logical) => logical + 1 };
}

t.test('disk.read=error(EIO) on one extent fails reads there only, as IO_ERROR, inline path included', async (t) => {
  const { pool, extentOf } = await poolWithTwoExtents(t);
  const volume = await pool.openVolume('vol', 4 * EXTENT);
  failpoints.armFromText(`disk.read=error(EIO):match=${extentOf(1)}`);
  const back = Buffer.alloc(4096);
  await t.rejects(volume.read(EXTENT + 4096, back), { code: 'IO_ERROR' }, 'the faulty extent');
  t.notOk(volume.readInline?.(EXTENT, back), 'the inline path steps aside while a point is armed');
  await volume.read(0, back);
  t.same(back, pattern(EXTENT, 1).subarray(0, 4096), 'the other extent reads fine');
  failpoints.disarmAll();
  await volume.read(EXTENT, back);
  t.same(back, pattern(EXTENT, 2).subarray(0, 4096), 'disarmed: the data was never harmed');
});

t.test('disk.write=error(EIO) fails the write with IO_ERROR; error(ENOSPC) is a full disk, NO_SPACE', async (t) => {
  const { pool, extentOf } = await poolWithTwoExtents(t);
  const volume = await pool.openVolume('vol', 4 * EXTENT);
  failpoints.armFromText(`disk.write=error(EIO):match=${extentOf(0)}`);
  await t.rejects(volume.write(0, pattern(512, 3)), { code: 'IO_ERROR' });
  await volume.write(EXTENT, pattern(512, 4));
  failpoints.armFromText('disk.write=error(ENOSPC)');
  await t.rejects(volume.write(EXTENT, pattern(512, 5)), { code: 'NO_SPACE' }, 'a mapped extent');
  await t.rejects(volume.write(3 * EXTENT, pattern(512, 6)), { code: 'NO_SPACE' }, 'an allocation');
  t.equal(pool.volumeAllocatedBytes('vol'), 2 * EXTENT, 'the failed allocation was given back');
});

t.test('disk.sync=stall(MS) stalls the flush, not the reads', async (t) => {
  const { pool } = await poolWithTwoExtents(t);
  const volume = await pool.openVolume('vol', 4 * EXTENT);
  failpoints.armFromText('disk.sync=stall(300):match=0');
  await volume.write(0, pattern(512, 7));
  const startedMs = performance.now();
  let flushed = false;
  const flush = volume.flush().then(() => {
    flushed = true;
  });
  const back = Buffer.alloc(512);
  await volume.read(0, back);
  t.same(back, pattern(512, 7), 'reads go on during the stalled sync');
  t.notOk(flushed, 'the flush is still stalled');
  await flush;
  t.ok(performance.now() - startedMs >= 290, 'the flush waited for the stalled disk');
  failpoints.armFromText('disk.sync=error(EIO)');
  await volume.write(0, pattern(512, 8));
  await t.rejects(volume.flush(), { code: 'IO_ERROR' }, 'a failed fdatasync fails the flush');
});
