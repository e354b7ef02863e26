import { execFileSync } from 'node:child_process';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { PROBE_BYTES } from '../../../blockdev/pool/superblock.js';
import { EXTENT, isAllZero, makeTempDir, openTestDb, openTestPool, pattern } from './pool-fixture.js';

/**
 * A raw block device as a pool disk, via a loop device over a temp file.
 * Its size comes from /sys/dev/block/MAJ:MIN/size; nothing on it is known
 * zero, so every allocation zeroes the extent first.
 */

function attachLoop(imagePath: string): string | Error {
  try {
    return execFileSync('losetup', ['-f', '--show', imagePath], { encoding: 'utf8', stdio: 'pipe' }).trim();
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}

t.test('a loop device is sized from sysfs and used as a pool disk', async (t) => {
  const dir = await makeTempDir(t);
  const imagePath = join(dir, 'backing.img');
  const imageBytes = 40 * EXTENT + 4096; // not a whole number of extents
  const image = await open(imagePath, 'w');
  // Stale bytes everywhere after the superblock probe window: what a used disk looks like.
  await image.write(pattern(imageBytes - PROBE_BYTES, 3), 0, imageBytes - PROBE_BYTES, PROBE_BYTES);
  await image.close();
  const device = attachLoop(imagePath);
  if (device instanceof Error) {
    // A plan of 0 with a reason reports this test as skipped (TAP "1..0 # SKIP").
    t.plan(0, `SKIP: losetup unavailable (${device.message.split('\n')[0] ?? ''})`);
    return;
  }
  t.teardown(() => {
    execFileSync('losetup', ['-d', device], { stdio: 'pipe' });
  });

  const db = openTestDb(t, dir);
  const pool = await openTestPool(t, db, { disks: [{ path: device }] });
  const [disk] = pool.stats().disks;
  t.equal(disk?.kind, 'block');
  t.equal(disk?.path, device);
  t.equal(disk?.capacityBytes, 39 * EXTENT, 'sysfs size, whole extents, minus the superblock extent');

  const volume = await pool.openVolume('on-block', 39 * EXTENT);
  // One small write per logical extent: they land on physical extents 1..6, most of them stale.
  for (let extent = 0; extent < 6; extent += 1) {
    await volume.write(extent * EXTENT + 10, pattern(20, 4 + extent));
  }
  const back = Buffer.alloc(7 * EXTENT);
  await volume.read(0, back);
  for (let extent = 0; extent < 6; extent += 1) {
    const slice = back.subarray(extent * EXTENT, (extent + 1) * EXTENT);
    t.ok(isAllZero(slice.subarray(0, 10)) && isAllZero(slice.subarray(30)), `extent ${extent}: zeroed around the write`);
    t.same(slice.subarray(10, 30), pattern(20, 4 + extent), `extent ${extent}: data`);
  }
  t.ok(isAllZero(back.subarray(6 * EXTENT)), 'the unallocated extent reads zero');
  await volume.flush();
  await pool.close();
  await db.root.close();

  const db2 = openTestDb(t, dir);
  const reopened = await openTestPool(t, db2, { disks: [{ path: device }] });
  const again = await reopened.openVolume('on-block', 39 * EXTENT);
  const after = Buffer.alloc(20);
  await again.read(5 * EXTENT + 10, after);
  t.same(after, pattern(20, 9), 'data survives a reopen of the block device');
  await reopened.close();
});
