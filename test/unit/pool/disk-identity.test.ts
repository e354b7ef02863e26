import { randomUUID } from 'node:crypto';
import { open, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { encodeSuperblock } from '../../../blockdev/pool/superblock.js';
import { EXTENT, makeTempDir, openTestDb, openTestPool, pattern, sha256File } from './pool-fixture.js';

/** Which disks a pool accepts: never someone else's, never a stranger's data, never silently without one of its own. */

t.test('a disk with foreign bytes is refused and left untouched', async (t) => {
  const dir = await makeTempDir(t);
  const foreignPath = join(dir, 'foreign.img');
  const content = Buffer.alloc(8 * EXTENT);
  pattern(512, 1).copy(content, 1024); // something like a filesystem superblock
  await writeFile(foreignPath, content);
  const before = await sha256File(foreignPath);
  const db = openTestDb(t, dir);
  await t.rejects(openTestPool(t, db, { disks: [{ path: foreignPath }] }), { code: 'DISK_FOREIGN' });
  await t.rejects(openTestPool(t, db, { disks: [{ path: foreignPath, sizeBytes: 8 * EXTENT }] }), { code: 'DISK_FOREIGN' });
  t.equal(await sha256File(foreignPath), before, 'not one byte changed');
});

t.test('a disk of another pool is refused with DISK_WRONG_POOL', async (t) => {
  const dir = await makeTempDir(t);
  const diskPath = join(dir, 'disk0');
  const dbA = openTestDb(t, join(dir, 'a'));
  const poolA = await openTestPool(t, dbA, { disks: [{ path: diskPath, sizeBytes: 8 * EXTENT }] });
  await poolA.close();
  const before = await sha256File(diskPath);
  const dbB = openTestDb(t, join(dir, 'b'));
  await t.rejects(openTestPool(t, dbB, { disks: [{ path: diskPath }] }), { code: 'DISK_WRONG_POOL' });
  t.equal(await sha256File(diskPath), before);
});

t.test('a recorded disk that is gone is DISK_MISSING (and is not recreated empty)', async (t) => {
  const dir = await makeTempDir(t);
  const db = openTestDb(t, dir);
  const disks = [
    { path: join(dir, 'disk0'), sizeBytes: 8 * EXTENT },
    { path: join(dir, 'disk1'), sizeBytes: 8 * EXTENT },
  ];
  const pool = await openTestPool(t, db, { disks });
  await pool.close();
  await t.rejects(openTestPool(t, db, { disks: disks.slice(0, 1) }), { code: 'DISK_MISSING' }, 'left out of the configuration');
  await rm(join(dir, 'disk1'));
  await t.rejects(openTestPool(t, db, { disks }), { code: 'DISK_MISSING' }, 'file deleted');
  await t.rejects(open(join(dir, 'disk1')), { code: 'ENOENT' }, 'the missing file was not recreated');
});

t.test('a damaged superblock is DISK_CORRUPT', async (t) => {
  const dir = await makeTempDir(t);
  const db = openTestDb(t, dir);
  const disks = [{ path: join(dir, 'disk0'), sizeBytes: 8 * EXTENT }];
  const pool = await openTestPool(t, db, { disks });
  await pool.close();
  const handle = await open(join(dir, 'disk0'), 'r+');
  await handle.write(Buffer.from([0xff]), 0, 1, 50);
  await handle.close();
  await t.rejects(openTestPool(t, db, { disks }), { code: 'DISK_CORRUPT' });
});

t.test('a recorded disk whose superblock was zeroed is DISK_CORRUPT, not re-initialised', async (t) => {
  const dir = await makeTempDir(t);
  const db = openTestDb(t, dir);
  const disks = [{ path: join(dir, 'disk0'), sizeBytes: 8 * EXTENT }];
  const pool = await openTestPool(t, db, { disks });
  await pool.close();
  const handle = await open(join(dir, 'disk0'), 'r+');
  await handle.write(Buffer.alloc(EXTENT), 0, EXTENT, 0);
  await handle.close();
  await t.rejects(openTestPool(t, db, { disks }), { code: 'DISK_CORRUPT' });
});

t.test('a half-initialised disk (our superblock, not recorded) is initialised again', async (t) => {
  const dir = await makeTempDir(t);
  const db = openTestDb(t, dir);
  const first = { path: join(dir, 'disk0'), sizeBytes: 8 * EXTENT };
  const pool = await openTestPool(t, db, { disks: [first] });
  await pool.close();
  // What a crash between "superblock written" and "disk recorded" leaves, plus stale bytes after it.
  const halfPath = join(dir, 'disk1');
  const image = Buffer.alloc(8 * EXTENT);
  encodeSuperblock({ poolId: pool.poolId, diskId: randomUUID(), extentSizeBytes: EXTENT, diskIndex: 1, capacityBytes: image.length }).copy(image);
  pattern(7 * EXTENT, 5).copy(image, EXTENT);
  await writeFile(halfPath, image);

  const reopened = await openTestPool(t, db, { disks: [first, { path: halfPath }] });
  t.equal(reopened.stats().disks.length, 2);
  const volume = await reopened.openVolume('v', 14 * EXTENT);
  await volume.write(0, Buffer.from('a'));
  await volume.write(13 * EXTENT + 1, Buffer.from('b'));
  const back = Buffer.alloc(14 * EXTENT);
  await volume.read(0, back);
  t.equal(back[0], 0x61);
  t.equal(back[13 * EXTENT + 1], 0x62);
  t.equal(back.reduce((sum, byte) => sum + byte, 0), 0x61 + 0x62, 'the stale bytes on the re-initialised disk are never visible');
});

t.test('bad configuration is refused clearly', async (t) => {
  const dir = await makeTempDir(t);
  const db = openTestDb(t, dir);
  await t.rejects(openTestPool(t, db, { disks: [] }), { code: 'CONFIG_INVALID' });
  await t.rejects(openTestPool(t, db, { disks: [{ path: join(dir, 'x') }], extentSizeBytes: 3 * 1024 * 1024 }), { code: 'CONFIG_INVALID' });
  await t.rejects(openTestPool(t, db, { disks: [{ path: join(dir, 'x') }], extentSizeBytes: 32 * 1024 }), { code: 'CONFIG_INVALID' });
  await t.rejects(openTestPool(t, db, { disks: [{ path: join(dir, 'no-size') }] }), { code: 'INVALID_ARGUMENT' });
  await t.rejects(openTestPool(t, db, { disks: [{ path: join(dir, 'tiny'), sizeBytes: EXTENT }] }), { code: 'INVALID_ARGUMENT' });
  const pool = await openTestPool(t, db, { disks: [{ path: join(dir, 'ok'), sizeBytes: 4 * EXTENT }] });
  await pool.close();
  await t.rejects(openTestPool(t, db, { disks: [{ path: join(dir, 'ok') }], extentSizeBytes: 2 * EXTENT }), { code: 'CONFIG_INVALID' }, 'extent size is fixed at creation');
  await t.rejects(pool.openVolume('v', EXTENT), { code: 'SHUTTING_DOWN' });
});
