import { join } from 'node:path';
import t from 'tap';
import type { VolumeStore } from '../../../blockdev/pool/pool-types.js';
import { sliceChunks } from '../../../blockdev/pool/volume-store.js';
import { EXTENT, isAllZero, makeTempDir, openTestDb, openTestPool, pattern } from './pool-fixture.js';

/**
 * The optional BlockDevice fast paths of the volume store (perf round 2):
 * writev (payload kept as socket chunks), readInline and writeInline. Each
 * must leave exactly the bytes write()/read() would.
 */

/** Cut `data` at the given offsets (sorted, inside the buffer) into views. */
function cut(data: Buffer, offsets: readonly number[]): Buffer[] {
  const pieces: Buffer[] = [];
  let start = 0;
  for (const offset of [...offsets, data.length]) {
    pieces.push(data.subarray(start, offset));
    start = offset;
  }
  return pieces;
}

/** The optional methods, checked present (the pool's store must offer them). */
function fastPaths(volume: VolumeStore): {
  readInline: (offset: number, target: Buffer) => boolean;
  writeInline: (offset: number, data: Buffer) => boolean;
  writev: (offset: number, chunks: readonly Buffer[], options?: { fua?: boolean }) => Promise<void>;
} {
  const { readInline, writeInline, writev } = volume;
  if (readInline === undefined || writeInline === undefined || writev === undefined) {
    throw new Error('the pool volume store must offer readInline, writeInline and writev');
  }
  return { readInline: readInline.bind(volume), writeInline: writeInline.bind(volume), writev: writev.bind(volume) };
}

t.test('sliceChunks returns views of exactly the asked range', async (t) => {
  const data = pattern(100, 1);
  const chunks = cut(data, [7, 7, 40, 99]);
  for (let start = 0; start <= 100; start += 3) {
    for (const lengthBytes of [0, 1, 33, 100 - start]) {
      const views = sliceChunks(chunks, start, lengthBytes);
      t.same(Buffer.concat(views), data.subarray(start, start + lengthBytes), `start ${start} length ${lengthBytes}`);
    }
  }
});

t.test('writev lands byte-exact across extents, mapped or not, at every chunk split', async (t) => {
  const dir = await makeTempDir(t);
  const db = openTestDb(t, dir);
  const pool = await openTestPool(t, db, { disks: [{ path: join(dir, 'disk0'), sizeBytes: 64 * EXTENT }] });
  const volume = await pool.openVolume('v', 8 * EXTENT);
  const fast = fastPaths(volume);
  // Two and a half extents from mid-extent: the first write allocates, later ones overwrite.
  const offset = EXTENT / 2 + 512;
  const lengthBytes = 2 * EXTENT + 1000;
  const step = 4093; // a prime stride over every region, including the extent boundaries
  for (let split = 1; split < lengthBytes; split += step) {
    const data = pattern(lengthBytes, split);
    await fast.writev(offset, cut(data, [split, Math.min(lengthBytes, split + 17)]), split % 2 === 0 ? { fua: true } : {});
    const back = Buffer.alloc(lengthBytes);
    await volume.read(offset, back);
    if (!back.equals(data)) {
      t.fail(`split at ${split}: bytes differ`);
      return;
    }
  }
  const edges = Buffer.alloc(offset);
  await volume.read(0, edges);
  t.ok(isAllZero(edges), 'bytes before the write stay zero');
  t.equal(volume.allocatedBytes(), 3 * EXTENT, 'three extents were allocated');
});

t.test('readInline and writeInline match read and write, and decline what they cannot do inline', async (t) => {
  const dir = await makeTempDir(t);
  const db = openTestDb(t, dir);
  const pool = await openTestPool(t, db, { disks: [{ path: join(dir, 'disk0'), sizeBytes: 64 * EXTENT }] });
  const volume = await pool.openVolume('v', 8 * EXTENT);
  const fast = fastPaths(volume);

  const hole = Buffer.alloc(4096, 0xff);
  t.equal(fast.readInline(EXTENT, hole), true, 'a read of a hole completes inline');
  t.ok(isAllZero(hole), 'and reads zeroes');

  const data = pattern(4096, 9);
  t.equal(fast.writeInline(EXTENT, data), false, 'a write to an unmapped extent is declined (allocation is asynchronous)');
  await volume.write(EXTENT, data);
  const update = pattern(4096, 10);
  t.equal(fast.writeInline(EXTENT + 4096 - 100, update.subarray(0, 100)), true, 'a small write to a mapped extent completes inline');
  const back = Buffer.alloc(4096);
  t.equal(fast.readInline(EXTENT, back), true, 'a small read of a mapped extent completes inline');
  t.same(back, Buffer.concat([data.subarray(0, 4096 - 100), update.subarray(0, 100)]), 'inline read sees the inline write');
  const viaRead = Buffer.alloc(4096);
  await volume.read(EXTENT, viaRead);
  t.same(viaRead, back, 'read() agrees');

  t.equal(fast.readInline(EXTENT - 10, Buffer.alloc(20)), false, 'a read across an extent boundary is declined');
  t.equal(fast.writeInline(EXTENT - 10, Buffer.alloc(20)), false, 'a write across an extent boundary is declined');
  t.throws(() => fast.readInline(8 * EXTENT - 10, Buffer.alloc(20)), { code: 'OUT_OF_RANGE' });
  t.throws(() => fast.writeInline(8 * EXTENT, Buffer.alloc(1)), { code: 'OUT_OF_RANGE' });

  await volume.close();
  t.throws(() => fast.readInline(0, Buffer.alloc(1)), { code: 'SHUTTING_DOWN' });
  t.throws(() => fast.writeInline(0, Buffer.alloc(1)), { code: 'SHUTTING_DOWN' });
  await t.rejects(fast.writev(0, [Buffer.alloc(1)]), { code: 'SHUTTING_DOWN' });
});

t.test('with inline I/O off, the inline paths decline and writev still lands', async (t) => {
  const dir = await makeTempDir(t);
  const db = openTestDb(t, dir);
  const pool = await openTestPool(t, db, { disks: [{ path: join(dir, 'disk0'), sizeBytes: 64 * EXTENT }], inlineIo: { maxInlineBytes: 0 } });
  const volume = await pool.openVolume('v', 8 * EXTENT);
  const fast = fastPaths(volume);
  const data = pattern(EXTENT, 3);
  await volume.write(0, data);
  t.equal(fast.readInline(0, Buffer.alloc(4096)), false, 'read declined');
  t.equal(fast.writeInline(0, Buffer.alloc(4096)), false, 'write declined');
  const update = pattern(3 * 4096, 4);
  await fast.writev(4096, cut(update, [1, 4096, 8000]));
  const back = Buffer.alloc(EXTENT);
  await volume.read(0, back);
  t.same(back, Buffer.concat([data.subarray(0, 4096), update, data.subarray(4 * 4096)]), 'bytes are exact');
});
