import { join } from 'node:path';
import t, { type Test } from 'tap';
import { EXTENT, isAllZero, makeTempDir, openTestDb, openTestPool, pattern } from './pool-fixture.js';

/** Thin provisioning, zero reads, extent-crossing and unaligned I/O, trim/zero, block status. */

async function freshVolume(t: Test, sizeBytes = 16 * EXTENT) {
  const dir = await makeTempDir(t);
  const db = openTestDb(t, dir);
  const pool = await openTestPool(t, db, { disks: [{ path: join(dir, 'disk0'), sizeBytes: 64 * EXTENT }] });
  const volume = await pool.openVolume('vol-a', sizeBytes);
  return { pool, volume };
}

t.test('a new volume uses nothing; a 4 KiB write allocates exactly one extent', async (t) => {
  const { pool, volume } = await freshVolume(t);
  t.equal(volume.allocatedBytes(), 0);
  t.equal(pool.stats().usedBytes, 0);
  await volume.write(3 * EXTENT + 8192, pattern(4096, 1));
  t.equal(volume.allocatedBytes(), EXTENT);
  t.equal(pool.volumeAllocatedBytes('vol-a'), EXTENT);
  t.equal(pool.stats().usedBytes, EXTENT);
  t.same(await volume.blockStatus(0, 16 * EXTENT), [
    { lengthBytes: 3 * EXTENT, hole: true, zero: true },
    { lengthBytes: EXTENT, hole: false, zero: false },
    { lengthBytes: 12 * EXTENT, hole: true, zero: true },
  ]);
});

t.test('unwritten ranges read as zeroes, also inside a written extent', async (t) => {
  const { volume } = await freshVolume(t);
  const target = Buffer.alloc(2 * EXTENT, 0xaa);
  await volume.read(0, target);
  t.ok(isAllZero(target), 'never-written extents');
  await volume.write(100, pattern(50, 2));
  const whole = Buffer.alloc(EXTENT, 0xaa);
  await volume.read(0, whole);
  t.ok(isAllZero(whole.subarray(0, 100)), 'before the write');
  t.same(whole.subarray(100, 150), pattern(50, 2));
  t.ok(isAllZero(whole.subarray(150)), 'after the write');
});

t.test('data crosses extent boundaries at unaligned offsets', async (t) => {
  const { volume } = await freshVolume(t);
  const offset = EXTENT - 7;
  const data = pattern(2 * EXTENT + 13, 3);
  await volume.write(offset, data);
  t.equal(volume.allocatedBytes(), 4 * EXTENT, 'touches four extents');
  const back = Buffer.alloc(data.length);
  await volume.read(offset, back);
  t.same(back, data);
  // An unaligned read that starts and ends inside the data.
  const inner = Buffer.alloc(EXTENT + 1);
  await volume.read(offset + 5, inner);
  t.same(inner, data.subarray(5, 5 + EXTENT + 1));
  // 1-byte requests at the very edges of the device.
  await volume.write(16 * EXTENT - 1, Buffer.from([0x5a]));
  const last = Buffer.alloc(1);
  await volume.read(16 * EXTENT - 1, last);
  t.equal(last[0], 0x5a);
});

t.test('concurrent writes into one new extent all land', async (t) => {
  const { volume } = await freshVolume(t);
  const writes = [];
  for (let slot = 0; slot < 16; slot += 1) {
    writes.push(volume.write(slot * 4096, pattern(4096, 100 + slot)));
  }
  await Promise.all(writes);
  t.equal(volume.allocatedBytes(), EXTENT, 'one allocation, not sixteen');
  for (let slot = 0; slot < 16; slot += 1) {
    const back = Buffer.alloc(4096);
    await volume.read(slot * 4096, back);
    t.same(back, pattern(4096, 100 + slot), `slot ${slot}`);
  }
});

t.test('out-of-range requests are refused before touching anything', async (t) => {
  const { volume } = await freshVolume(t);
  await t.rejects(volume.write(16 * EXTENT - 1, Buffer.alloc(2)), { code: 'OUT_OF_RANGE' });
  await t.rejects(volume.read(-1, Buffer.alloc(1)), { code: 'OUT_OF_RANGE' });
  await t.rejects(volume.trim(0, 16 * EXTENT + 1), { code: 'OUT_OF_RANGE' });
  await t.rejects(volume.writeZeroes(1.5, 10), { code: 'OUT_OF_RANGE' });
  await t.rejects(volume.blockStatus(16 * EXTENT, 1), { code: 'OUT_OF_RANGE' });
  t.equal(volume.allocatedBytes(), 0);
});

t.test('trim frees whole extents and zeroes the partial edges', async (t) => {
  const { pool, volume } = await freshVolume(t);
  await volume.write(0, pattern(4 * EXTENT, 4));
  t.equal(volume.allocatedBytes(), 4 * EXTENT);
  // From the middle of extent 0 to the middle of extent 3: frees extents 1 and 2.
  const trimStart = EXTENT / 2;
  const trimEnd = 3 * EXTENT + 1000;
  await volume.trim(trimStart, trimEnd - trimStart);
  t.equal(volume.allocatedBytes(), 2 * EXTENT, 'usage drops by the two whole extents');
  const back = Buffer.alloc(4 * EXTENT);
  await volume.read(0, back);
  t.same(back.subarray(0, trimStart), pattern(4 * EXTENT, 4).subarray(0, trimStart), 'kept before');
  t.ok(isAllZero(back.subarray(trimStart, trimEnd)), 'trimmed range reads zero');
  t.same(back.subarray(trimEnd), pattern(4 * EXTENT, 4).subarray(trimEnd), 'kept after');
  t.same(await volume.blockStatus(0, 4 * EXTENT), [
    { lengthBytes: EXTENT, hole: false, zero: false },
    { lengthBytes: 2 * EXTENT, hole: true, zero: true },
    { lengthBytes: EXTENT, hole: false, zero: false },
  ]);
  t.equal(pool.stats().usedBytes, 4 * EXTENT, 'freed extents still count until a flush makes the free durable');
  await volume.flush();
  t.equal(pool.stats().usedBytes, 2 * EXTENT, 'after the flush the pool has them back');
});

t.test('writeZeroes: punches holes by default, stays allocated with noHole, refuses noHole+fastZero', async (t) => {
  const { volume } = await freshVolume(t);
  await volume.write(0, pattern(2 * EXTENT, 5));
  await volume.writeZeroes(0, EXTENT, { fastZero: true });
  t.equal(volume.allocatedBytes(), EXTENT, 'whole extent freed');
  await volume.writeZeroes(EXTENT + 10, 20, { noHole: true });
  const edge = Buffer.alloc(40);
  await volume.read(EXTENT, edge);
  t.same(edge.subarray(0, 10), pattern(2 * EXTENT, 5).subarray(EXTENT, EXTENT + 10));
  t.ok(isAllZero(edge.subarray(10, 30)));
  t.same(edge.subarray(30), pattern(2 * EXTENT, 5).subarray(EXTENT + 30, EXTENT + 40));
  // noHole on unallocated space allocates it (NBD NO_HOLE: the area stays allocated).
  await volume.writeZeroes(4 * EXTENT, 2 * EXTENT, { noHole: true });
  t.equal(volume.allocatedBytes(), 3 * EXTENT);
  const zeroes = Buffer.alloc(2 * EXTENT, 1);
  await volume.read(4 * EXTENT, zeroes);
  t.ok(isAllZero(zeroes));
  t.same(await volume.blockStatus(4 * EXTENT, 2 * EXTENT), [{ lengthBytes: 2 * EXTENT, hole: false, zero: false }]);
  await t.rejects(volume.writeZeroes(0, EXTENT, { noHole: true, fastZero: true }), { code: 'NOT_SUPPORTED' });
});

t.test('blockStatus merges runs, starts mid-extent and stays within the request', async (t) => {
  const { volume } = await freshVolume(t);
  await volume.write(2 * EXTENT, pattern(2 * EXTENT, 6));
  t.same(await volume.blockStatus(EXTENT + 5, 2 * EXTENT), [
    { lengthBytes: EXTENT - 5, hole: true, zero: true },
    { lengthBytes: EXTENT + 5, hole: false, zero: false },
  ]);
  t.same(await volume.blockStatus(2 * EXTENT + 1, 10), [{ lengthBytes: 10, hole: false, zero: false }]);
});

t.test('capabilities and block size hints', async (t) => {
  const { volume } = await freshVolume(t);
  t.same(volume.capabilities, { readOnly: false, fua: true, trim: true, writeZeroes: true, fastZero: true, blockStatus: true, multiConn: true });
  t.same(volume.blockSize, { minimumBytes: 1, preferredBytes: 4096, maximumBytes: 32 * 1024 * 1024 });
});

t.test('close flushes and later calls fail with SHUTTING_DOWN; reopening gives a new store', async (t) => {
  const { pool, volume } = await freshVolume(t);
  await volume.write(0, pattern(10, 7), { fua: true });
  const again = await pool.openVolume('vol-a', 16 * EXTENT);
  t.equal(again, volume, 'second open of an open volume returns the same instance');
  await volume.close();
  await t.rejects(volume.read(0, Buffer.alloc(1)), { code: 'SHUTTING_DOWN' });
  await t.rejects(volume.write(0, Buffer.alloc(1)), { code: 'SHUTTING_DOWN' });
  const reopened = await pool.openVolume('vol-a', 16 * EXTENT);
  t.not(reopened, volume);
  const back = Buffer.alloc(10);
  await reopened.read(0, back);
  t.same(back, pattern(10, 7));
});

t.test('resize grows an open volume and refuses to shrink', async (t) => {
  const { pool, volume } = await freshVolume(t);
  await pool.resizeVolume('vol-a', 32 * EXTENT);
  t.equal(volume.sizeBytes, 32 * EXTENT);
  await volume.write(31 * EXTENT, pattern(EXTENT, 8));
  await t.rejects(pool.resizeVolume('vol-a', EXTENT), { code: 'INVALID_SIZE' });
  await t.rejects(pool.openVolume('vol-a', EXTENT), { code: 'INVALID_SIZE' });
  await t.rejects(pool.resizeVolume('nope', EXTENT), { code: 'VOLUME_NOT_FOUND' });
  await t.rejects(pool.openVolume('bad!id', EXTENT), { code: 'INVALID_ARGUMENT' });
});
