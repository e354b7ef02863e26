import { join } from 'node:path';
import { failpoints } from '../../../common/failpoints/failpoints.js';
import t, { type Test } from 'tap';
import type { DiskPool } from '../../../blockdev/pool/disk-pool.js';
import type { BlockDevice } from '../../../blockdev/block-device.js';
import { MAX_SNAPSHOTS_PER_VOLUME } from '../../../blockdev/pool/snapshot-store.js';
import { EXTENT, isAllZero, makeTempDir, openTestDb, openTestPool, pattern } from './pool-fixture.js';

/**
 * Snapshots, clones and reverts on the disk pool (issue 8, docs/snapshots.md):
 * copy-on-write at extent granularity, refcounted extents, and the space
 * accounting. Extents are 64 KiB here (pool-fixture.ts).
 */

const VOLUME_EXTENTS = 8;
const VOLUME_BYTES = VOLUME_EXTENTS * EXTENT;

async function freshPool(t: Test, diskExtents = 64): Promise<DiskPool> {
  const dir = await makeTempDir(t);
  const db = openTestDb(t, dir);
  return openTestPool(t, db, { disks: [{ path: join(dir, 'disk0'), sizeBytes: diskExtents * EXTENT }] });
}

async function readAll(device: BlockDevice, offset = 0, lengthBytes = device.sizeBytes): Promise<Buffer> {
  const bytes = Buffer.alloc(lengthBytes);
  await device.read(offset, bytes);
  return bytes;
}

t.test('pattern, snapshot, overwrite: the snapshot reads the old pattern bit for bit, the volume the new one', async (t) => {
  const pool = await freshPool(t);
  const volume = await pool.openVolume('vol', VOLUME_BYTES);
  const before = pattern(VOLUME_BYTES, 1);
  await volume.write(0, before);
  await pool.createSnapshot('vol', 's1');
  t.equal(pool.stats().usedBytes, VOLUME_BYTES, 'a snapshot copies nothing');
  const after = pattern(VOLUME_BYTES, 2);
  await volume.write(0, after);
  const snapshot = await pool.openSnapshot('vol', 's1');
  t.ok((await readAll(snapshot)).equals(before), 'the snapshot reads the old pattern');
  t.ok((await readAll(volume)).equals(after), 'the volume reads the new one');
  t.equal(pool.stats().usedBytes, 2 * VOLUME_BYTES, 'every extent was copied once');
  // Later writes to the copied extents cost nothing more.
  await volume.write(100, pattern(4096, 3));
  t.equal(pool.stats().usedBytes, 2 * VOLUME_BYTES);
  t.equal(snapshot.capabilities.readOnly, true);
  await t.rejects(snapshot.write(0, Buffer.alloc(512)), { code: 'READ_ONLY' });
  await t.rejects(snapshot.trim(0, 512), { code: 'READ_ONLY' });
  await t.rejects(snapshot.writeZeroes(0, 512), { code: 'READ_ONLY' });
  t.same(await snapshot.blockStatus(0, VOLUME_BYTES), [{ lengthBytes: VOLUME_BYTES, hole: false, zero: false }]);
  await snapshot.close();
  await t.rejects(snapshot.read(0, Buffer.alloc(512)), { code: 'SHUTTING_DOWN' });
});

t.test('many snapshots of one volume each keep their own version', async (t) => {
  const pool = await freshPool(t, 128);
  const volume = await pool.openVolume('vol', VOLUME_BYTES);
  const versions: Buffer[] = [];
  for (let index = 0; index < 10; index += 1) {
    // Each round rewrites a different window crossing extent boundaries.
    await volume.write(((index * 3 * EXTENT) / 2) % (VOLUME_BYTES - 2 * EXTENT), pattern(2 * EXTENT - 7, 10 + index));
    versions.push(await readAll(volume));
    await pool.createSnapshot('vol', `s${index}`);
  }
  await volume.write(0, pattern(VOLUME_BYTES, 99));
  for (const [index, expected] of versions.entries()) {
    const snapshot = await pool.openSnapshot('vol', `s${index}`);
    t.ok((await readAll(snapshot)).equals(expected), `s${index} reads its version`);
    await snapshot.close();
  }
  t.same(
    pool.listSnapshots('vol').map((info) => info.snapshotId),
    versions.map((_, index) => `s${index}`),
    'listed oldest first',
  );
});

t.test('a partial overwrite of a shared extent keeps the rest of the extent in the volume and the whole in the snapshot', async (t) => {
  const pool = await freshPool(t);
  const volume = await pool.openVolume('vol', VOLUME_BYTES);
  const base = pattern(VOLUME_BYTES, 4);
  await volume.write(0, base);
  await pool.createSnapshot('vol', 'snap');
  const patch = pattern(3000, 5);
  const patchOffset = EXTENT + 1000;
  await volume.write(patchOffset, patch);
  const expected = Buffer.from(base);
  patch.copy(expected, patchOffset);
  t.ok((await readAll(volume)).equals(expected), 'the volume has the patch and the rest of the old extent');
  t.ok((await readAll(await pool.openSnapshot('vol', 'snap'))).equals(base));
  t.equal(pool.stats().usedBytes, VOLUME_BYTES + EXTENT, 'one extent copied');
  // writev and writeInline take the copy-on-write path too.
  await pool.createSnapshot('vol', 'snap2');
  t.equal(volume.writeInline?.(2 * EXTENT, Buffer.alloc(512, 1)), false, 'no inline write into a shared extent');
  const chunks = [pattern(1000, 6), pattern(24, 7)];
  await volume.writev?.(2 * EXTENT + 10, chunks);
  Buffer.concat(chunks).copy(expected, 2 * EXTENT + 10);
  t.ok((await readAll(volume)).equals(expected), 'writev copied on write');
  const snap2 = await pool.openSnapshot('vol', 'snap2');
  t.ok((await readAll(snap2, 2 * EXTENT, EXTENT)).equals(base.subarray(2 * EXTENT, 3 * EXTENT)), 'snap2 kept its extent');
});

t.test('trim and zero of shared extents never touch the shared data', async (t) => {
  const pool = await freshPool(t);
  const volume = await pool.openVolume('vol', VOLUME_BYTES);
  const base = pattern(VOLUME_BYTES, 8);
  await volume.write(0, base);
  await pool.createSnapshot('vol', 'snap');
  const expected = Buffer.from(base);
  // Whole extent 0 trimmed: the volume drops its reference, nothing is allocated or freed.
  await volume.trim(0, EXTENT);
  expected.fill(0, 0, EXTENT);
  t.equal(pool.volumeAllocatedBytes('vol'), VOLUME_BYTES - EXTENT);
  t.equal(pool.stats().usedBytes, VOLUME_BYTES, 'the snapshot still holds the trimmed extent');
  // Partial trim of extent 1 and a partial zero of extent 2: copy on write.
  await volume.trim(EXTENT + 100, 900);
  expected.fill(0, EXTENT + 100, EXTENT + 1000);
  await volume.writeZeroes(2 * EXTENT + 5, 50);
  expected.fill(0, 2 * EXTENT + 5, 2 * EXTENT + 55);
  // NO_HOLE zeroing of the whole of extent 3.
  await volume.writeZeroes(3 * EXTENT, EXTENT, { noHole: true });
  expected.fill(0, 3 * EXTENT, 4 * EXTENT);
  t.ok((await readAll(volume)).equals(expected), 'the volume reads the zeroes');
  t.ok((await readAll(await pool.openSnapshot('vol', 'snap'))).equals(base), 'the snapshot reads every old byte');
  t.equal(pool.stats().usedBytes, VOLUME_BYTES + 3 * EXTENT, 'three extents copied');
});

t.test('clones are independent of their snapshot and source', async (t) => {
  const pool = await freshPool(t);
  const volume = await pool.openVolume('src', VOLUME_BYTES);
  const base = pattern(VOLUME_BYTES, 11);
  await volume.write(0, base);
  await pool.createSnapshot('src', 'gold');
  await pool.cloneVolume('src', 'gold', 'clone', 2 * VOLUME_BYTES);
  await pool.cloneVolume('src', 'gold', 'clone'); // the same request again: no-op
  await t.rejects(pool.cloneVolume('src', 'gold', 'src'), { code: 'VOLUME_EXISTS' });
  await t.rejects(pool.cloneVolume('src', 'nope', 'other'), { code: 'SNAPSHOT_NOT_FOUND' });
  await t.rejects(pool.cloneVolume('src', 'gold', 'small', EXTENT), { code: 'INVALID_SIZE' });
  t.equal(pool.stats().usedBytes, VOLUME_BYTES, 'a clone copies nothing');
  const clone = await pool.openVolume('clone', 2 * VOLUME_BYTES);
  t.equal(clone.sizeBytes, 2 * VOLUME_BYTES);
  const cloneExpected = Buffer.concat([base, Buffer.alloc(VOLUME_BYTES)]);
  t.ok((await readAll(clone)).equals(cloneExpected), 'the clone reads the snapshot, zeroes past it');
  await clone.write(EXTENT, pattern(100, 12));
  pattern(100, 12).copy(cloneExpected, EXTENT);
  t.ok((await readAll(volume)).equals(base), 'a write to the clone leaves the source alone');
  await volume.write(3 * EXTENT, pattern(EXTENT, 13));
  await volume.close();
  await pool.deleteSnapshot('src', 'gold');
  await pool.deleteVolume('src');
  t.ok((await readAll(clone)).equals(cloneExpected), 'the clone survives its snapshot and its source');
  t.equal(pool.stats().usedBytes, VOLUME_BYTES, 'only the clone\'s extents stay');
  await clone.close();
  await pool.deleteVolume('clone');
  t.equal(pool.stats().usedBytes, 0, 'everything freed');
});

t.test('revert makes a closed volume the snapshot again', async (t) => {
  const pool = await freshPool(t);
  let volume = await pool.openVolume('vol', VOLUME_BYTES);
  const base = pattern(4 * EXTENT, 14);
  await volume.write(0, base);
  await pool.createSnapshot('vol', 'snap');
  await volume.write(EXTENT, pattern(2 * EXTENT, 15));
  await volume.write(6 * EXTENT, pattern(EXTENT, 16));
  await t.rejects(pool.revertVolume('vol', 'snap'), { code: 'VOLUME_ATTACHED' });
  await volume.close();
  await pool.revertVolume('vol', 'snap');
  t.equal(pool.stats().usedBytes, 4 * EXTENT, 'the overwritten copies were freed');
  volume = await pool.openVolume('vol', VOLUME_BYTES);
  const expected = Buffer.concat([base, Buffer.alloc(VOLUME_BYTES - base.length)]);
  t.ok((await readAll(volume)).equals(expected), 'the volume reads the snapshot again');
  await volume.write(0, pattern(10, 17));
  t.ok((await readAll(await pool.openSnapshot('vol', 'snap'), 0, base.length)).equals(base), 'writes after the revert copy on write');
  await t.rejects(pool.revertVolume('vol', 'nope'), { code: 'SNAPSHOT_NOT_FOUND' });
});

t.test('changedExtents and snapshotExtents', async (t) => {
  const pool = await freshPool(t);
  const volume = await pool.openVolume('vol', VOLUME_BYTES);
  await volume.write(0, pattern(3 * EXTENT, 18)); // extents 0-2
  await volume.write(5 * EXTENT, pattern(10, 19)); // extent 5
  await pool.createSnapshot('vol', 'a');
  await volume.write(EXTENT + 5, pattern(10, 20)); // 1 copied
  await volume.trim(2 * EXTENT, EXTENT); // 2 dropped
  await volume.write(7 * EXTENT, pattern(10, 21)); // 7 new
  await pool.createSnapshot('vol', 'b');
  t.same([...pool.snapshotExtents('vol', 'a')], [0, 1, 2, 5]);
  t.same([...pool.snapshotExtents('vol', 'b')], [0, 1, 5, 7]);
  t.same(pool.changedExtents('vol', 'a', 'b'), [1, 2, 7]);
  t.same(pool.changedExtents('vol', 'b', 'a'), [1, 2, 7]);
  t.same(pool.changedExtents('vol', 'a', 'a'), []);
  t.throws(() => pool.changedExtents('vol', 'a', 'c'), { code: 'SNAPSHOT_NOT_FOUND' });
  t.throws(() => pool.snapshotExtents('nope', 'a'), { code: 'VOLUME_NOT_FOUND' });
});

t.test('space accounting and lifecycle errors', async (t) => {
  const pool = await freshPool(t);
  const volume = await pool.openVolume('vol', VOLUME_BYTES);
  await volume.write(0, pattern(4 * EXTENT, 22));
  await pool.createSnapshot('vol', 'a');
  await pool.createSnapshot('vol', 'a'); // a retried request: no-op
  await volume.write(0, pattern(EXTENT, 23)); // extent 0 now only in 'a'
  await pool.createSnapshot('vol', 'b');
  await volume.write(EXTENT, pattern(EXTENT, 24)); // extent 1's old copy in 'a' and 'b'
  const [a, b] = pool.listSnapshots('vol');
  t.match(a, { snapshotId: 'a', sizeBytes: VOLUME_BYTES, exclusiveBytes: EXTENT, sharedBytes: 3 * EXTENT });
  t.match(b, { snapshotId: 'b', exclusiveBytes: 0, sharedBytes: 4 * EXTENT });
  t.type(a?.createdAtMs, 'number');
  t.same(pool.listSnapshots('nope'), []);
  await t.rejects(pool.createSnapshot('nope', 'x'), { code: 'VOLUME_NOT_FOUND' });
  await t.rejects(pool.createSnapshot('vol', 'bad!id'), { code: 'INVALID_ARGUMENT' });
  await t.rejects(pool.createSnapshot('vol', 'no@at'), { code: 'INVALID_ARGUMENT' }, 'export names are volume@snapshot');
  await t.rejects(pool.openSnapshot('vol', 'x'), { code: 'SNAPSHOT_NOT_FOUND' });
  const open = await pool.openSnapshot('vol', 'a');
  t.equal(await pool.openSnapshot('vol', 'a'), open, 'one instance per snapshot');
  await t.rejects(pool.deleteSnapshot('vol', 'a'), { code: 'SNAPSHOT_OPEN' });
  await volume.close();
  await t.rejects(pool.deleteVolume('vol'), { code: 'SNAPSHOT_OPEN' });
  await open.close();
  const beforeDelete = pool.stats().usedBytes;
  await pool.deleteSnapshot('vol', 'a');
  await pool.deleteSnapshot('vol', 'a'); // idempotent
  t.equal(pool.stats().usedBytes, beforeDelete - EXTENT, 'deleting a freed exactly its exclusive bytes');
  t.match(pool.listSnapshots('vol'), [{ snapshotId: 'b', exclusiveBytes: EXTENT, sharedBytes: 3 * EXTENT }], 'the old extent 1 is now only in b');
  await pool.deleteVolume('vol');
  t.equal(pool.stats().usedBytes, 0, 'deleting the volume deleted its snapshots and freed everything');
  t.same(pool.listSnapshots('vol'), []);
});

t.test('snapshots, clones and refcounts survive a clean reopen', async (t) => {
  const dir = await makeTempDir(t);
  const disks = [{ path: join(dir, 'disk0'), sizeBytes: 64 * EXTENT }];
  const db = openTestDb(t, dir);
  const pool = await openTestPool(t, db, { disks });
  const volume = await pool.openVolume('vol', VOLUME_BYTES);
  const base = pattern(VOLUME_BYTES, 25);
  await volume.write(0, base);
  await pool.createSnapshot('vol', 'snap');
  await pool.cloneVolume('vol', 'snap', 'clone');
  await pool.resizeVolume('clone', 2 * VOLUME_BYTES); // the record keeps the clone's origin
  await volume.write(0, pattern(EXTENT, 26));
  const volumeContent = await readAll(volume);
  const used = pool.stats().usedBytes;
  await pool.close();
  await db.root.close();

  const db2 = openTestDb(t, dir);
  const reopened = await openTestPool(t, db2, { disks });
  t.equal(reopened.stats().usedBytes, used, 'each shared extent counted once after reopen');
  t.ok((await readAll(await reopened.openSnapshot('vol', 'snap'))).equals(base));
  t.ok((await readAll(await reopened.openVolume('vol', VOLUME_BYTES))).equals(volumeContent));
  const clone = await reopened.openVolume('clone', 2 * VOLUME_BYTES);
  t.ok((await readAll(clone, 0, VOLUME_BYTES)).equals(base));
  await reopened.cloneVolume('vol', 'snap', 'clone'); // still recognised as the same clone
  // The refcounts were rebuilt: writing the clone copies on write and leaves the snapshot intact.
  await clone.write(EXTENT, pattern(EXTENT, 27));
  t.ok((await readAll(await reopened.openSnapshot('vol', 'snap'))).equals(base));
  t.equal(reopened.stats().usedBytes, used + EXTENT);
});

t.test('concurrent writes into one shared extent share one copy', async (t) => {
  const pool = await freshPool(t);
  const volume = await pool.openVolume('vol', VOLUME_BYTES);
  const base = pattern(VOLUME_BYTES, 30);
  await volume.write(0, base);
  await pool.createSnapshot('vol', 'snap');
  const expected = Buffer.from(base);
  const operations: Promise<void>[] = [];
  for (let index = 0; index < 16; index += 1) {
    const data = pattern(4096, 31 + index);
    data.copy(expected, EXTENT + index * 4096);
    operations.push(volume.write(EXTENT + index * 4096, data));
  }
  operations.push(volume.writeZeroes(2 * EXTENT - 512, 512));
  expected.fill(0, 2 * EXTENT - 512, 2 * EXTENT);
  await Promise.all(operations);
  t.ok((await readAll(volume)).equals(expected), 'every write landed');
  t.ok((await readAll(await pool.openSnapshot('vol', 'snap'))).equals(base), 'the snapshot kept the old extent');
  t.equal(pool.stats().usedBytes, VOLUME_BYTES + EXTENT, 'the extent was copied once');
});

t.test('a write racing a copy-on-write whose snapshot is deleted meanwhile is not lost', async (t) => {
  const pool = await freshPool(t);
  const volume = await pool.openVolume('vol', VOLUME_BYTES);
  const base = pattern(VOLUME_BYTES, 50);
  await volume.write(0, base);
  await pool.createSnapshot('vol', 'snap');
  t.teardown(() => failpoints.disarmAll());
  // The copy's disk write stalls; meanwhile the snapshot goes and the extent stops being shared.
  failpoints.armFromText('disk.write=stall(150):times=1');
  const first = volume.write(10, pattern(100, 51));
  await pool.deleteSnapshot('vol', 'snap');
  const second = volume.write(5000, pattern(100, 52));
  await Promise.all([first, second]);
  failpoints.disarmAll();
  const expected = Buffer.from(base);
  pattern(100, 51).copy(expected, 10);
  pattern(100, 52).copy(expected, 5000);
  t.ok((await readAll(volume)).equals(expected), 'both writes are in the volume');
  await volume.flush();
  t.equal(pool.stats().usedBytes, VOLUME_BYTES, 'the old extent was freed once the copy was mapped');
});

t.test('a full pool refuses the copy-on-write with NO_SPACE; the snapshot and the volume stay intact', async (t) => {
  const pool = await freshPool(t, VOLUME_EXTENTS + 2); // extent 0 is the superblock: one spare data extent
  const volume = await pool.openVolume('vol', VOLUME_BYTES);
  const base = pattern(VOLUME_BYTES, 60);
  await volume.write(0, base);
  await pool.createSnapshot('vol', 'snap');
  await volume.write(0, pattern(10, 61)); // takes the spare extent
  await t.rejects(volume.write(EXTENT, pattern(10, 62)), { code: 'NO_SPACE' });
  t.equal(volume.writeInline?.(EXTENT, pattern(10, 62)), false, 'no inline write around the copy either');
  const expected = Buffer.from(base);
  pattern(10, 61).copy(expected, 0);
  t.ok((await readAll(volume)).equals(expected), 'the failed write changed nothing');
  t.ok((await readAll(await pool.openSnapshot('vol', 'snap'))).equals(base));
  await (await pool.openSnapshot('vol', 'snap')).close();
  await pool.deleteSnapshot('vol', 'snap');
  await volume.write(EXTENT, pattern(10, 62)); // not shared any more: in place
  pattern(10, 62).copy(expected, EXTENT);
  t.ok((await readAll(volume)).equals(expected));
  t.equal(pool.stats().usedBytes, VOLUME_BYTES);
});

t.test('a volume keeps at most MAX_SNAPSHOTS_PER_VOLUME snapshots', async (t) => {
  const pool = await freshPool(t);
  const volume = await pool.openVolume('vol', VOLUME_BYTES);
  await volume.write(0, pattern(EXTENT, 70));
  for (let index = 0; index < MAX_SNAPSHOTS_PER_VOLUME; index += 1) await pool.createSnapshot('vol', `s${index}`);
  await t.rejects(pool.createSnapshot('vol', 'one-too-many'), { code: 'SNAPSHOT_LIMIT' });
  await pool.createSnapshot('vol', 's0'); // an existing id is still a no-op
  t.equal(pool.listSnapshots('vol').length, MAX_SNAPSHOTS_PER_VOLUME);
  t.equal(pool.stats().usedBytes, EXTENT, 'one extent, referenced 1025 times');
  await volume.close();
  await pool.deleteVolume('vol');
  t.equal(pool.stats().usedBytes, 0);
});
