import t from 'tap';
import { BLOCK, cdb10, cdb16, createScsiFixture, pattern, send, senseOf } from './helpers/scsi-fixture.js';

/** VERIFY, WRITE SAME, UNMAP, GET LBA STATUS, COMPARE AND WRITE, READ CAPACITY, PRE-FETCH, SYNCHRONIZE CACHE. */

const READ_10 = 0x28;
const WRITE_10 = 0x2a;
const VERIFY_10 = 0x2f;
const VERIFY_16 = 0x8f;
const WRITE_SAME_10 = 0x41;
const WRITE_SAME_16 = 0x93;
const UNMAP = 0x42;
const COMPARE_AND_WRITE = 0x89;
const PRE_FETCH_10 = 0x34;
const SYNCHRONIZE_CACHE_10 = 0x35;

function unmapList(ranges: readonly [number, number][]): Buffer {
  const out = Buffer.alloc(8 + ranges.length * 16);
  out.writeUInt16BE(out.length - 2, 0);
  out.writeUInt16BE(ranges.length * 16, 2);
  ranges.forEach(([lba, blocks], index) => {
    out.writeBigUInt64BE(BigInt(lba), 8 + index * 16);
    out.writeUInt32BE(blocks, 16 + index * 16);
  });
  return out;
}

function unmapCdb(parameterBytes: number, anchor = false): Buffer {
  const cdb = Buffer.alloc(10);
  cdb[0] = UNMAP;
  cdb[1] = anchor ? 1 : 0;
  cdb.writeUInt16BE(parameterBytes, 7);
  return cdb;
}

function compareAndWriteCdb(lba: number, blocks: number, flags = 0): Buffer {
  const cdb = Buffer.alloc(16);
  cdb[0] = COMPARE_AND_WRITE;
  cdb[1] = flags;
  cdb.writeBigUInt64BE(BigInt(lba), 2);
  cdb[13] = blocks;
  return cdb;
}

function getLbaStatusCdb(lba: number, allocation: number): Buffer {
  const cdb = Buffer.alloc(16);
  cdb[0] = 0x9e;
  cdb[1] = 0x12;
  cdb.writeBigUInt64BE(BigInt(lba), 2);
  cdb.writeUInt32BE(allocation, 10);
  return cdb;
}

t.test('VERIFY: BYTCHK 0 reads only, 1 compares, MISCOMPARE carries the offset', async (t) => {
  const fixture = createScsiFixture();
  const session = fixture.open();
  const data = pattern(2 * BLOCK, 3);
  await send(session, cdb10(WRITE_10, 8, 2), { dataOut: data });
  t.equal((await send(session, cdb10(VERIFY_10, 8, 2))).status, 0, 'BYTCHK 0');
  t.equal((await send(session, cdb10(VERIFY_10, 8, 2, 0x02), { dataOut: data })).status, 0, 'BYTCHK 1 equal');
  const changed = Buffer.from(data);
  changed[700] = (changed[700] ?? 0) ^ 0xff;
  const mismatch = await send(session, cdb10(VERIFY_10, 8, 2, 0x02), { dataOut: changed });
  t.match(senseOf(mismatch), { key: 0xe, asc: 0x1d, ascq: 0, information: 700 });
  t.equal((await send(session, cdb10(VERIFY_10, 8, 2), { dataOut: changed })).status, 0, 'no compare, no miscompare');
  const sameBlock = Buffer.alloc(BLOCK, 0xaa);
  await send(session, cdb10(WRITE_10, 20, 1), { dataOut: sameBlock });
  await send(session, cdb10(WRITE_10, 21, 1), { dataOut: sameBlock });
  t.equal((await send(session, cdb10(VERIFY_10, 20, 2, 0x06), { dataOut: sameBlock })).status, 0, 'BYTCHK 3');
  t.match(senseOf(await send(session, cdb10(VERIFY_10, 0, 1, 0x04))), { key: 0x5, asc: 0x24 }, 'BYTCHK 2');
  t.match(senseOf(await send(session, cdb10(VERIFY_10, 0, 1, 0x20))), { key: 0x5, asc: 0x24 }, 'VRPROTECT');
  const blocks = fixture.device.sizeBytes / BLOCK;
  t.match(senseOf(await send(session, cdb16(VERIFY_16, BigInt(blocks), 1))), { key: 0x5, asc: 0x21 });
});

t.test('WRITE SAME writes the pattern, zeroes, or unmaps', async (t) => {
  const fixture = createScsiFixture({ chunkBytes: 4096 });
  const session = fixture.open();
  const block = pattern(BLOCK, 9);
  t.equal((await send(session, cdb10(WRITE_SAME_10, 0, 300), { dataOut: block })).status, 0);
  const read = await send(session, cdb10(READ_10, 0, 300), { expectedDataTransferLength: 300 * BLOCK });
  for (let index = 0; index < 300; index += 1) {
    if (!read.dataIn?.subarray(index * BLOCK, (index + 1) * BLOCK).equals(block)) {
      t.fail(`block ${index} differs`);
      break;
    }
  }
  const allocated = fixture.device.allocatedChunkCount();
  t.equal((await send(session, cdb16(WRITE_SAME_16, 0n, 64, 0x08), { dataOut: Buffer.alloc(BLOCK) })).status, 0, 'UNMAP');
  t.ok(fixture.device.allocatedChunkCount() < allocated, 'unmap deallocated chunks');
  t.equal(fixture.device.stats.trims, 1);
  t.equal((await send(session, cdb16(WRITE_SAME_16, 64n, 8, 0x01))).status, 0, 'NDOB writes zeroes');
  t.equal(fixture.device.stats.writeZeroes, 1);
  const zeroes = await send(session, cdb10(READ_10, 0, 72));
  t.ok(zeroes.dataIn?.equals(Buffer.alloc(72 * BLOCK)), 'unmapped and zeroed blocks read as zeroes');
});

t.test('WRITE SAME field checks', async (t) => {
  const fixture = createScsiFixture();
  const session = fixture.open();
  const block = Buffer.alloc(BLOCK);
  const blocks = fixture.device.sizeBytes / BLOCK;
  t.match(senseOf(await send(session, cdb10(WRITE_SAME_10, 0, 1, 0x10), { dataOut: block })), { key: 0x5, asc: 0x24 }, 'ANCHOR without UNMAP');
  t.match(senseOf(await send(session, cdb10(WRITE_SAME_10, 0, 1, 0x18), { dataOut: block })), { key: 0x5, asc: 0x24 }, 'ANCHOR is not supported');
  t.match(senseOf(await send(session, cdb10(WRITE_SAME_10, blocks + 1, 0), { dataOut: block })), { key: 0x5, asc: 0x21 }, '0 blocks past the end');
  t.match(senseOf(await send(session, cdb10(WRITE_SAME_10, 0, 1, 0x08), { dataOut: Buffer.alloc(BLOCK / 2) })), { key: 0x5, asc: 0x24 }, 'short data-out');
  t.match(senseOf(await send(session, cdb10(WRITE_SAME_10, 0, 1, 0x08), { dataOut: Buffer.alloc(BLOCK * 2) })), { key: 0x5, asc: 0x24 }, 'long data-out');
  const thick = createScsiFixture({ capabilities: { trim: false } }).open();
  t.match(senseOf(await send(thick, cdb10(WRITE_SAME_10, 0, 1, 0x08), { dataOut: block })), { key: 0x5, asc: 0x24 }, 'UNMAP on a thick device');
  t.match(senseOf(await send(thick, unmapCdb(24), { dataOut: unmapList([[0, 1]]) })), { key: 0x5, asc: 0x20 }, 'no UNMAP command without trim');
});

t.test('UNMAP validates the whole list before trimming anything', async (t) => {
  const fixture = createScsiFixture({ chunkBytes: 4096 });
  const session = fixture.open();
  const blocks = fixture.device.sizeBytes / BLOCK;
  await send(session, cdb10(WRITE_10, 0, 16), { dataOut: Buffer.alloc(16 * BLOCK, 1) });
  const list = unmapList([
    [0, 8],
    [blocks - 1, 2],
  ]);
  t.match(senseOf(await send(session, unmapCdb(list.length), { dataOut: list })), { key: 0x5, asc: 0x21 });
  t.equal(fixture.device.stats.trims, 0);
  const good = unmapList([
    [0, 8],
    [8, 0],
  ]);
  t.equal((await send(session, unmapCdb(good.length), { dataOut: good })).status, 0);
  t.equal(fixture.device.stats.trims, 1, 'zero-block descriptors are skipped');
  t.equal((await send(session, unmapCdb(0))).status, 0, 'empty parameter list');
  t.match(senseOf(await send(session, unmapCdb(4), { dataOut: Buffer.alloc(4) })), { key: 0x5, asc: 0x1a });
  t.match(senseOf(await send(session, unmapCdb(good.length, true), { dataOut: good })), { key: 0x5, asc: 0x24 });
});

t.test('GET LBA STATUS reports mapped and deallocated runs', async (t) => {
  const fixture = createScsiFixture({ chunkBytes: 4096 });
  const session = fixture.open();
  await send(session, cdb10(WRITE_10, 0, 16), { dataOut: Buffer.alloc(16 * BLOCK, 1) });
  const answer = await send(session, getLbaStatusCdb(0, 1024));
  t.equal(answer.status, 0);
  const data = answer.dataIn ?? Buffer.alloc(0);
  t.equal(data.readUInt32BE(0), data.length - 4);
  t.equal(data.readBigUInt64BE(8), 0n);
  t.equal(data.readUInt32BE(16), 16, 'the first 8 KiB chunk pair is mapped');
  t.equal(data[20], 0);
  t.equal(data.readBigUInt64BE(24), 16n);
  t.equal(data[36], 1, 'then deallocated');
  const small = await send(session, getLbaStatusCdb(3, 24));
  t.equal(small.dataIn?.length, 24, 'one descriptor fits in 24 bytes');
  t.equal(small.dataIn?.readBigUInt64BE(8), 3n);
  const blocks = fixture.device.sizeBytes / BLOCK;
  t.match(senseOf(await send(session, getLbaStatusCdb(blocks, 24))), { key: 0x5, asc: 0x21 });
});

t.test('COMPARE AND WRITE: writes on match, MISCOMPARE with offset otherwise', async (t) => {
  const fixture = createScsiFixture();
  const session = fixture.open();
  const original = pattern(2 * BLOCK, 1);
  const replacement = pattern(2 * BLOCK, 2);
  await send(session, cdb10(WRITE_10, 4, 2), { dataOut: original });
  const ok = await send(session, compareAndWriteCdb(4, 2), { dataOut: Buffer.concat([original, replacement]) });
  t.equal(ok.status, 0);
  t.same((await send(session, cdb10(READ_10, 4, 2))).dataIn, replacement);
  const stale = await send(session, compareAndWriteCdb(4, 2), { dataOut: Buffer.concat([original, original]) });
  t.match(senseOf(stale), { key: 0xe, asc: 0x1d, information: 0 });
  t.same((await send(session, cdb10(READ_10, 4, 2))).dataIn, replacement, 'nothing written on miscompare');
  t.match(senseOf(await send(session, compareAndWriteCdb(4, 1), { dataOut: Buffer.alloc(4 * BLOCK) })), { key: 0x5, asc: 0x24 });
  t.match(senseOf(await send(session, compareAndWriteCdb(4, 3), { dataOut: Buffer.alloc(4 * BLOCK) })), { key: 0x5, asc: 0x24 });
  const blocks = fixture.device.sizeBytes / BLOCK;
  t.match(senseOf(await send(session, compareAndWriteCdb(blocks, 1), { dataOut: Buffer.alloc(2 * BLOCK) })), { key: 0x5, asc: 0x21 });
});

t.test('COMPARE AND WRITE is atomic against concurrent writes to the range', async (t) => {
  const fixture = createScsiFixture();
  const one = fixture.open('iqn.2026-11.test:one');
  const two = fixture.open('iqn.2026-11.test:two');
  const zero = Buffer.alloc(BLOCK);
  const mine = Buffer.alloc(BLOCK, 0x11);
  // Hold the device's read so the compare is in flight while the other write arrives.
  let releaseRead: () => void = () => {};
  const gate = new Promise<void>((resolve) => {
    releaseRead = resolve;
  });
  const realRead = fixture.device.read.bind(fixture.device);
  fixture.device.read = async (offset: number, target: Buffer): Promise<void> => {
    await gate;
    return realRead(offset, target);
  };
  const caw = send(one, compareAndWriteCdb(0, 1), { dataOut: Buffer.concat([zero, mine]) });
  const write = send(two, cdb10(WRITE_10, 0, 1), { dataOut: Buffer.alloc(BLOCK, 0x22) });
  await new Promise<void>((resolve) => setImmediate(resolve));
  t.equal(fixture.device.stats.writes, 0, 'the overlapping write waits for the compare-and-write');
  releaseRead();
  t.equal((await caw).status, 0);
  t.equal((await write).status, 0);
  const final = Buffer.alloc(BLOCK);
  await realRead(0, final);
  t.same(final, Buffer.alloc(BLOCK, 0x22), 'the later write lands after, never between');
});

t.test('READ CAPACITY 10/16', async (t) => {
  const fixture = createScsiFixture({ blockSize: { preferredBytes: 4096 } });
  const session = fixture.open();
  const blocks = fixture.device.sizeBytes / BLOCK;
  const rc10 = await send(session, [0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  t.equal(rc10.dataIn?.readUInt32BE(0), blocks - 1);
  t.equal(rc10.dataIn?.readUInt32BE(4), BLOCK);
  t.match(senseOf(await send(session, [0x25, 0, 0, 0, 0, 1, 0, 0, 0, 0])), { key: 0x5, asc: 0x24 }, 'LBA without PMI');
  const rc16 = await send(session, [0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32, 0, 0]);
  const data = rc16.dataIn ?? Buffer.alloc(32);
  t.equal(data.readBigUInt64BE(0), BigInt(blocks - 1));
  t.equal(data[13], 0, 'one logical block per physical block (granularity goes in the Block Limits VPD)');
  t.equal(data[14], 0xc0, 'LBPME and LBPRZ');
  const short = await send(session, [0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 15, 0, 0]);
  t.equal(short.status, 0);
  t.equal(short.dataIn?.length, 15, 'cut to the allocation length');
});

t.test('PRE-FETCH and SYNCHRONIZE CACHE', async (t) => {
  const fixture = createScsiFixture();
  const session = fixture.open();
  const blocks = fixture.device.sizeBytes / BLOCK;
  t.equal((await send(session, cdb10(PRE_FETCH_10, blocks - 256, 256))).status, 0);
  t.match(senseOf(await send(session, cdb10(PRE_FETCH_10, blocks, 1))), { key: 0x5, asc: 0x21 });
  t.equal((await send(session, cdb10(PRE_FETCH_10, blocks, 0))).status, 0);
  t.equal((await send(session, cdb10(SYNCHRONIZE_CACHE_10, 0, 0))).status, 0);
  t.equal(fixture.device.stats.flushes, 1);
  t.match(senseOf(await send(session, cdb10(SYNCHRONIZE_CACHE_10, blocks + 1, 0))), { key: 0x5, asc: 0x21 });
});
