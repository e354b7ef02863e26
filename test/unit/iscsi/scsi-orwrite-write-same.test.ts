import t from 'tap';
import { BLOCK, cdb10, cdb16, createScsiFixture, pattern, send, senseOf } from './helpers/scsi-fixture.js';

/** ORWRITE(16) (SBC-3 ORWRITE (16)) and WRITE SAME with NUMBER OF LOGICAL BLOCKS 0 or UNMAP (SBC-3 §5.44/5.45). */

const READ_10 = 0x28;
const WRITE_10 = 0x2a;
const ORWRITE_16 = 0x8b;
const WRITE_SAME_10 = 0x41;
const WRITE_SAME_16 = 0x93;

function or(left: Buffer, right: Buffer): Buffer {
  return Buffer.from(left.map((byte, index) => byte | (right[index] ?? 0)));
}

t.test('ORWRITE writes the OR of the data-out and the medium', async (t) => {
  const fixture = createScsiFixture();
  const session = fixture.open();
  const before = pattern(4 * BLOCK, 3);
  const mask = pattern(4 * BLOCK, 101);
  t.equal((await send(session, cdb10(WRITE_10, 10, 4), { dataOut: before })).status, 0);
  const answer = await send(session, cdb16(ORWRITE_16, 10n, 4), { dataOut: mask });
  t.equal(answer.status, 0);
  t.equal(answer.transferBytes, 4 * BLOCK);
  const read = await send(session, cdb10(READ_10, 10, 4), { expectedDataTransferLength: 4 * BLOCK });
  t.same(read.dataIn, or(before, mask), 'each byte is medium | data-out');
  t.not(read.dataIn?.equals(mask), true, 'not a plain write');
  const fuaBefore = fixture.device.stats.fuaWrites;
  t.equal((await send(session, cdb16(ORWRITE_16, 10n, 1, 0x18), { dataOut: Buffer.alloc(BLOCK) })).status, 0, 'DPO and FUA');
  t.equal(fixture.device.stats.fuaWrites, fuaBefore + 1, 'FUA reaches the device');
  const unwritten = await send(session, cdb16(ORWRITE_16, 100n, 1), { dataOut: mask.subarray(0, BLOCK) });
  t.equal(unwritten.status, 0);
  const readBack = await send(session, cdb10(READ_10, 100, 1), { expectedDataTransferLength: BLOCK });
  t.same(readBack.dataIn, mask.subarray(0, BLOCK), 'unwritten blocks read as zeroes, so OR gives the data-out');
});

t.test('ORWRITE field, range and protection checks', async (t) => {
  const fixture = createScsiFixture();
  const session = fixture.open();
  const blocks = fixture.device.sizeBytes / BLOCK;
  const block = Buffer.alloc(BLOCK, 0xa5);
  for (let protect = 1; protect < 8; protect += 1) {
    const answer = await send(session, cdb16(ORWRITE_16, 0n, 1, protect << 5), { dataOut: block });
    t.match(senseOf(answer), { key: 0x5, asc: 0x24, fieldPointer: { inCdb: true, byte: 1, bit: 5 } }, `ORPROTECT ${protect}`);
  }
  t.match(senseOf(await send(session, cdb16(ORWRITE_16, BigInt(blocks), 1), { dataOut: block })), { key: 0x5, asc: 0x21 }, 'one block beyond the end');
  t.match(senseOf(await send(session, cdb16(ORWRITE_16, BigInt(blocks - 1), 2), { dataOut: Buffer.alloc(2 * BLOCK) })), { key: 0x5, asc: 0x21 }, 'straddling the end');
  t.match(senseOf(await send(session, cdb16(ORWRITE_16, 2n ** 63n, 1), { dataOut: block })), { key: 0x5, asc: 0x21 }, 'LBA 2^63');
  t.match(senseOf(await send(session, cdb16(ORWRITE_16, BigInt(blocks + 1), 0))), { key: 0x5, asc: 0x21 }, '0 blocks past the end');
  const writes = fixture.device.stats.writes;
  t.equal((await send(session, cdb16(ORWRITE_16, 0n, 0))).status, 0, '0 blocks is not an error');
  t.equal(fixture.device.stats.writes, writes, 'and writes nothing');
  const smallTransfers = createScsiFixture({ blockSize: { maximumBytes: 1024 * 1024 } }).open();
  const tooLong = await send(smallTransfers, cdb16(ORWRITE_16, 0n, 4096), { dataOut: block });
  t.match(senseOf(tooLong), { key: 0x5, asc: 0x24, fieldPointer: { byte: 10 } }, 'more than MAXIMUM TRANSFER LENGTH');
  const readOnly = createScsiFixture({ capabilities: { readOnly: true } }).open();
  t.match(senseOf(await send(readOnly, cdb16(ORWRITE_16, 0n, 1), { dataOut: block })), { key: 0x7, asc: 0x27 }, 'write protected');
});

t.test('ORWRITE is atomic against a concurrent write to the range', async (t) => {
  const fixture = createScsiFixture();
  const one = fixture.open('iqn.2026-11.test:one');
  const two = fixture.open('iqn.2026-11.test:two');
  // Hold the device's read so the read-modify-write is in flight while the other write arrives.
  let releaseRead: () => void = () => {};
  const gate = new Promise<void>((resolve) => {
    releaseRead = resolve;
  });
  const realRead = fixture.device.read.bind(fixture.device);
  fixture.device.read = async (offset: number, target: Buffer): Promise<void> => {
    await gate;
    return realRead(offset, target);
  };
  const orWrite = send(one, cdb16(ORWRITE_16, 0n, 1), { dataOut: Buffer.alloc(BLOCK, 0x0f) });
  const write = send(two, cdb10(WRITE_10, 0, 1), { dataOut: Buffer.alloc(BLOCK, 0x20) });
  await new Promise<void>((resolve) => setImmediate(resolve));
  t.equal(fixture.device.stats.writes, 0, 'the overlapping write waits for the ORWRITE');
  releaseRead();
  t.equal((await orWrite).status, 0);
  t.equal((await write).status, 0);
  const final = Buffer.alloc(BLOCK);
  await realRead(0, final);
  t.same(final, Buffer.alloc(BLOCK, 0x20), 'the later write lands after the merge, never between its read and write');
});

t.test('WRITE SAME with 0 blocks writes through the last LBA (WSNZ = 0)', async (t) => {
  const fixture = createScsiFixture();
  const session = fixture.open();
  const blocks = fixture.device.sizeBytes / BLOCK;
  const block = pattern(BLOCK, 77);
  const answer = await send(session, cdb10(WRITE_SAME_10, blocks - 8, 0), { dataOut: block });
  t.equal(answer.status, 0);
  const tail = await send(session, cdb10(READ_10, blocks - 9, 9), { expectedDataTransferLength: 9 * BLOCK });
  t.same(tail.dataIn?.subarray(0, BLOCK), Buffer.alloc(BLOCK), 'the block before the LBA is untouched');
  for (let index = 1; index < 9; index += 1) {
    t.same(tail.dataIn?.subarray(index * BLOCK, (index + 1) * BLOCK), block, `tail block ${index} holds the pattern`);
  }
  t.equal((await send(session, cdb16(WRITE_SAME_16, BigInt(blocks - 1), 0), { dataOut: block })).status, 0, 'WRITE SAME(16), last block');
  t.match(senseOf(await send(session, cdb10(WRITE_SAME_10, blocks, 0), { dataOut: block })), { key: 0x5, asc: 0x21 }, '0 blocks at the capacity');
  t.match(senseOf(await send(session, cdb16(WRITE_SAME_16, 2n ** 63n, 0), { dataOut: block })), { key: 0x5, asc: 0x21 }, '0 blocks at LBA 2^63');
});

t.test('WRITE SAME with 0 blocks is bounded by MAXIMUM WRITE SAME LENGTH', async (t) => {
  // 1 MiB transfers: MAXIMUM WRITE SAME LENGTH is 2048 blocks of a 16384-block volume.
  const fixture = createScsiFixture({ blockSize: { maximumBytes: 1024 * 1024 } });
  const session = fixture.open();
  const blocks = fixture.device.sizeBytes / BLOCK;
  const block = Buffer.alloc(BLOCK, 1);
  const whole = await send(session, cdb10(WRITE_SAME_10, 0, 0), { dataOut: block });
  t.match(senseOf(whole), { key: 0x5, asc: 0x24, fieldPointer: { byte: 7 } }, 'the rest of the volume is too long');
  t.equal(fixture.device.stats.writes, 0, 'nothing written');
  t.match(senseOf(await send(session, cdb10(WRITE_SAME_10, blocks - 2049, 0), { dataOut: block })), { key: 0x5, asc: 0x24 }, 'maximum + 1');
  t.equal((await send(session, cdb10(WRITE_SAME_10, blocks - 2048, 0), { dataOut: block })).status, 0, 'exactly the maximum');
});

t.test('WRITE SAME with UNMAP deallocates whatever the pattern (SBC-3 §5.44)', async (t) => {
  const fixture = createScsiFixture({ chunkBytes: 4096 });
  const session = fixture.open();
  const blocks = fixture.device.sizeBytes / BLOCK;
  t.equal((await send(session, cdb10(WRITE_10, blocks - 16, 16), { dataOut: Buffer.alloc(16 * BLOCK, 0xff) })).status, 0);
  const allocated = fixture.device.allocatedChunkCount();
  const answer = await send(session, cdb10(WRITE_SAME_10, blocks - 16, 0, 0x08), { dataOut: Buffer.alloc(BLOCK, 0xff) });
  t.equal(answer.status, 0);
  t.equal(fixture.device.stats.trims, 1, 'an unmap operation, not a write');
  t.ok(fixture.device.allocatedChunkCount() < allocated, 'the chunks are deallocated');
  const read = await send(session, cdb10(READ_10, blocks - 16, 16), { expectedDataTransferLength: 16 * BLOCK });
  t.same(read.dataIn, Buffer.alloc(16 * BLOCK), 'deallocated blocks read as zeroes (LBPRZ)');
  const thick = createScsiFixture({ capabilities: { trim: false } }).open();
  t.equal((await send(thick, cdb10(WRITE_SAME_10, 0, 4), { dataOut: Buffer.alloc(BLOCK, 0xff) })).status, 0, 'no UNMAP: a plain write');
});
