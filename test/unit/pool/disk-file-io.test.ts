import { openSync, closeSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { chunkViews, directFileIo, MAX_WRITE_PIECE_BYTES, WRITTEN_REGION_BYTES, WrittenRegions, writePieces } from '../../../blockdev/pool/disk-file-io.js';

/** Large writes reach the file as folio-sized pieces, byte for byte (disk-file-io.ts). */

const PIECE = MAX_WRITE_PIECE_BYTES;

function pattern(lengthBytes: number, seed: number): Buffer {
  const data = Buffer.allocUnsafe(lengthBytes);
  for (let index = 0; index < lengthBytes; index += 1) data[index] = (index * 31 + seed) & 0xff;
  return data;
}

/** `data` cut into chunks of the given sizes (the last one takes the rest). */
function cut(data: Buffer, sizes: readonly number[]): Buffer[] {
  const chunks: Buffer[] = [];
  let at = 0;
  for (const size of sizes) {
    chunks.push(data.subarray(at, at + size));
    at += size;
  }
  if (at < data.length) chunks.push(data.subarray(at));
  return chunks;
}

t.test('writePieces cuts at multiples of the piece size and covers the range exactly', async (t) => {
  t.same(writePieces(0, PIECE), [[0, PIECE]]);
  t.same(writePieces(0, 3 * PIECE), [[0, PIECE], [PIECE, PIECE], [2 * PIECE, PIECE]]);
  t.same(writePieces(PIECE - 512, PIECE + 1024), [[PIECE - 512, 512], [PIECE, PIECE], [2 * PIECE, 512]]);
  const position = 5 * PIECE + 12_345;
  const pieces = writePieces(position, 1024 * 1024);
  t.equal(pieces.reduce((sum, [, bytes]) => sum + bytes, 0), 1024 * 1024);
  for (const [at, bytes] of pieces) {
    t.ok(bytes > 0 && bytes <= PIECE, 'no piece is over the limit');
    t.equal(Math.floor(at / PIECE), Math.floor((at + bytes - 1) / PIECE), 'no piece crosses a boundary');
  }
});

t.test('chunkViews returns the requested bytes across chunk edges', async (t) => {
  const data = pattern(1000, 1);
  const chunks = cut(data, [100, 300, 50]);
  t.same(Buffer.concat(chunkViews(chunks, 0, 1000)), data);
  t.same(Buffer.concat(chunkViews(chunks, 90, 400)), data.subarray(90, 490));
  t.same(Buffer.concat(chunkViews(chunks, 400, 50)), data.subarray(400, 450));
  t.same(chunkViews(chunks, 1000, 0), []);
});

t.test('WrittenRegions says which large writes are first writes', async (t) => {
  const regions = new WrittenRegions();
  const MiB = WRITTEN_REGION_BYTES;
  t.ok(regions.markFirst(0, MiB), 'a new region');
  t.notOk(regions.markFirst(0, MiB), 'the same region again');
  t.notOk(regions.markFirst(100, 4096), 'inside it');
  t.ok(regions.markFirst(MiB - 1, 2), 'reaching into the next region');
  t.notOk(regions.markFirst(MiB, MiB));
  t.ok(regions.markFirst(40 * 1024 * MiB, 4 * MiB), 'far away, past a bitmap page (32 GiB)');
  t.notOk(regions.markFirst(40 * 1024 * MiB + MiB, MiB));
  t.ok(regions.markFirst(3 * MiB, 2 * MiB), 'partly new counts as new');
});

t.test('large write, writev and their sync twins land byte for byte at unaligned positions', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'plinth-disk-file-io-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'disk');
  const fd = openSync(path, 'w+');
  t.teardown(() => closeSync(fd));
  const io = directFileIo(fd);
  const size = 1024 * 1024 + 7 * 4096 + 3;
  const expected = Buffer.alloc(6 * 1024 * 1024);
  const cases: { name: string; position: number; run: (data: Buffer, position: number) => Promise<void> | void }[] = [
    { name: 'write', position: 4096 + 17, run: (data, position) => io.write(data, 0, data.length, position) },
    { name: 'writeSync', position: 1024 * 1024 + 5, run: (data, position) => io.writeSync(data, 0, data.length, position) },
    { name: 'writev', position: 3 * 1024 * 1024 - 1, run: (data, position) => io.writev(cut(data, [1, 70_000, 65_536, 300_000]), data.length, position) },
    { name: 'writevSync', position: 4 * 1024 * 1024 + PIECE, run: (data, position) => io.writevSync(cut(data, [65_535, 2, 131_072]), data.length, position) },
  ];
  for (const [index, entry] of cases.entries()) {
    const data = pattern(size, index + 2);
    await entry.run(data, entry.position);
    data.copy(expected, entry.position);
  }
  // Overwrites of regions written before go out whole; the bytes must match just the same.
  for (const [index, entry] of cases.entries()) {
    const data = pattern(size, index + 20);
    await entry.run(data, entry.position);
    data.copy(expected, entry.position);
  }
  // A write with a source offset: only its slice lands.
  const source = pattern(3 * PIECE, 9);
  await io.write(source, 1000, 2 * PIECE + 1, 10);
  source.copy(expected, 10, 1000, 1000 + 2 * PIECE + 1);
  const onDisk = readFileSync(path);
  t.equal(onDisk.length, 4 * 1024 * 1024 + PIECE + size);
  t.ok(onDisk.equals(expected.subarray(0, onDisk.length)), 'file matches every write');
});

t.test('a failing piece rejects the write once every piece settled', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'plinth-disk-file-io-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'disk');
  closeSync(openSync(path, 'w+'));
  const readOnlyFd = openSync(path, 'r');
  t.teardown(() => closeSync(readOnlyFd));
  const io = directFileIo(readOnlyFd);
  await t.rejects(io.write(pattern(4 * PIECE, 1), 0, 4 * PIECE, 0), { code: 'EBADF' });
  await t.rejects(io.writev([pattern(3 * PIECE, 1)], 3 * PIECE, 0), { code: 'EBADF' });
  t.throws(() => io.writeSync(pattern(2 * PIECE, 1), 0, 2 * PIECE, 0), { code: 'EBADF' });
});
