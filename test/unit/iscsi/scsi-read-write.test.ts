import t from 'tap';
import { PlinthError } from '../../../common/plinth-error.js';
import { BLOCK, cdb10, cdb16, createScsiFixture, pattern, send, senseOf } from './helpers/scsi-fixture.js';

/** READ/WRITE 6/10/12/16 and WRITE AND VERIFY (SBC-3 §5.7-5.11, §5.37-5.39) over a memory device. */

const READ_6 = 0x08;
const WRITE_6 = 0x0a;
const READ_10 = 0x28;
const WRITE_10 = 0x2a;
const READ_12 = 0xa8;
const WRITE_12 = 0xaa;
const READ_16 = 0x88;
const WRITE_16 = 0x8a;
const WRITE_AND_VERIFY_10 = 0x2e;

function cdb12(opcode: number, lba: number, blocks: number, flags = 0): Buffer {
  const cdb = Buffer.alloc(12);
  cdb[0] = opcode;
  cdb[1] = flags;
  cdb.writeUInt32BE(lba, 2);
  cdb.writeUInt32BE(blocks, 6);
  return cdb;
}

t.test('every READ/WRITE size round-trips data', async (t) => {
  const fixture = createScsiFixture();
  const session = fixture.open();
  const forms: [Buffer, Buffer][] = [
    [Buffer.from([WRITE_6, 0, 0, 3, 2, 0]), Buffer.from([READ_6, 0, 0, 3, 2, 0])],
    [cdb10(WRITE_10, 10, 2), cdb10(READ_10, 10, 2)],
    [cdb12(WRITE_12, 20, 2), cdb12(READ_12, 20, 2)],
    [cdb16(WRITE_16, 30n, 2), cdb16(READ_16, 30n, 2)],
  ];
  for (const [index, [write, read]] of forms.entries()) {
    const data = pattern(2 * BLOCK, index);
    const written = await send(session, write, { dataOut: data });
    t.equal(written.status, 0, `write form ${index}`);
    t.equal(written.transferBytes, 2 * BLOCK);
    const answer = await send(session, read, { expectedDataTransferLength: 2 * BLOCK });
    t.equal(answer.status, 0);
    t.same(answer.dataIn, data, `read form ${index} returns what was written`);
  }
});

t.test('READ(6) with transfer length 0 reads 256 blocks', async (t) => {
  const fixture = createScsiFixture();
  const answer = await send(fixture.open(), [READ_6, 0, 0, 0, 0, 0], { expectedDataTransferLength: 256 * BLOCK });
  t.equal(answer.status, 0);
  t.equal(answer.dataIn?.length, 256 * BLOCK);
});

t.test('out of range and zero-length transfers (SBC-3 §4.5)', async (t) => {
  const fixture = createScsiFixture();
  const session = fixture.open();
  const blocks = fixture.device.sizeBytes / BLOCK;
  const beyond = await send(session, cdb10(READ_10, blocks - 1, 2));
  t.equal(beyond.status, 2);
  t.match(senseOf(beyond), { key: 0x5, asc: 0x21, ascq: 0x00 });
  const atEnd = await send(session, cdb10(READ_10, blocks, 0));
  t.equal(atEnd.status, 0, 'zero blocks at the end of the LU is fine');
  const pastEnd = await send(session, cdb10(READ_10, blocks + 1, 0));
  t.match(senseOf(pastEnd), { key: 0x5, asc: 0x21 }, 'zero blocks past the end is out of range');
  const huge = await send(session, cdb16(READ_16, 0xffffffffffffffffn, 1));
  t.match(senseOf(huge), { key: 0x5, asc: 0x21 }, '64-bit LBA wrap is out of range');
  const write = await send(session, cdb16(WRITE_16, BigInt(blocks), 1), { dataOut: Buffer.alloc(BLOCK) });
  t.match(senseOf(write), { key: 0x5, asc: 0x21 });
  t.equal(fixture.device.stats.writes, 0, 'nothing reached the device');
});

t.test('RDPROTECT/WRPROTECT without protection information are invalid fields', async (t) => {
  const fixture = createScsiFixture();
  const session = fixture.open();
  const read = await send(session, cdb10(READ_10, 0, 1, 0x20));
  t.match(senseOf(read), { key: 0x5, asc: 0x24, fieldPointer: { inCdb: true, byte: 1, bit: 5 } });
  const write = await send(session, cdb10(WRITE_10, 0, 1, 0x40), { dataOut: Buffer.alloc(BLOCK) });
  t.match(senseOf(write), { key: 0x5, asc: 0x24 });
});

t.test('FUA and WRITE AND VERIFY write through; DPO is accepted', async (t) => {
  const fixture = createScsiFixture();
  const session = fixture.open();
  t.equal((await send(session, cdb10(WRITE_10, 0, 1, 0x08), { dataOut: Buffer.alloc(BLOCK, 1) })).status, 0);
  t.equal(fixture.device.stats.fuaWrites, 1);
  t.equal((await send(session, cdb10(WRITE_10, 0, 1, 0x10), { dataOut: Buffer.alloc(BLOCK, 1) })).status, 0);
  t.equal(fixture.device.stats.fuaWrites, 1, 'DPO alone is not FUA');
  t.equal((await send(session, cdb10(WRITE_AND_VERIFY_10, 0, 1, 0x02), { dataOut: Buffer.alloc(BLOCK, 2) })).status, 0);
  t.equal(fixture.device.stats.fuaWrites, 2);
  t.equal((await send(session, cdb10(READ_10, 0, 1, 0x18))).status, 0, 'READ with DPO+FUA');
});

t.test('data-out shorter than the CDB asks: only whole blocks sent are written', async (t) => {
  const fixture = createScsiFixture();
  const session = fixture.open();
  const answer = await send(session, cdb10(WRITE_10, 0, 2), { dataOut: Buffer.alloc(BLOCK, 7) });
  t.equal(answer.status, 0);
  t.equal(answer.transferBytes, 2 * BLOCK, 'the transport reports the overflow from this');
  const read = await send(session, cdb10(READ_10, 0, 2));
  t.same(read.dataIn?.subarray(0, BLOCK), Buffer.alloc(BLOCK, 7));
  t.same(read.dataIn?.subarray(BLOCK), Buffer.alloc(BLOCK), 'the second block was not written');
  const small = await send(session, cdb10(WRITE_10, 4, 1), { dataOut: Buffer.alloc(200, 9) });
  t.equal(small.status, 0);
  t.equal(fixture.device.stats.writes, 1, 'a partial block is not written');
});

t.test('reads longer than the EDTL read only what will be sent', async (t) => {
  const fixture = createScsiFixture();
  const answer = await send(fixture.open(), cdb10(READ_10, 0, 4), { expectedDataTransferLength: BLOCK });
  t.equal(answer.dataIn?.length, BLOCK);
  t.equal(answer.transferBytes, 4 * BLOCK);
});

t.test('transfers above the Block Limits maximum are refused', async (t) => {
  const fixture = createScsiFixture({ blockSize: { maximumBytes: 64 * 1024 } });
  const answer = await send(fixture.open(), cdb10(READ_10, 0, 129));
  t.match(senseOf(answer), { key: 0x5, asc: 0x24, fieldPointer: { byte: 7 } });
});

t.test('read-only volumes refuse writes with DATA PROTECT', async (t) => {
  const fixture = createScsiFixture({ capabilities: { readOnly: true } });
  const session = fixture.open();
  const answer = await send(session, cdb10(WRITE_10, 0, 1), { dataOut: Buffer.alloc(BLOCK) });
  t.match(senseOf(answer), { key: 0x7, asc: 0x27, ascq: 0x00 });
  t.equal((await send(session, cdb10(READ_10, 0, 1))).status, 0);
});

t.test('device errors map to sense; a fenced device rejects', async (t) => {
  const fixture = createScsiFixture();
  const session = fixture.open();
  fixture.device.failNext('read', new PlinthError('IO_ERROR', 'disk failed'));
  t.match(senseOf(await send(session, cdb10(READ_10, 0, 1))), { key: 0x3, asc: 0x11, ascq: 0x00 });
  fixture.device.failNext('write', new PlinthError('IO_ERROR', 'disk failed'));
  t.match(senseOf(await send(session, cdb10(WRITE_10, 0, 1), { dataOut: Buffer.alloc(BLOCK) })), { key: 0x3, asc: 0x0c });
  fixture.device.failNext('write', new PlinthError('NO_SPACE', 'pool full'));
  t.match(senseOf(await send(session, cdb10(WRITE_10, 0, 1), { dataOut: Buffer.alloc(BLOCK) })), { key: 0x7, asc: 0x27, ascq: 0x07 });
  fixture.device.failNext('write', new Error('surprise'));
  t.match(senseOf(await send(session, cdb10(WRITE_10, 0, 1), { dataOut: Buffer.alloc(BLOCK) })), { key: 0x4, asc: 0x44 });
  fixture.device.failNext('write', new PlinthError('FENCED', 'newer generation'));
  await t.rejects(send(session, cdb10(WRITE_10, 0, 1), { dataOut: Buffer.alloc(BLOCK) }), { code: 'FENCED' });
  session.close();
  await t.rejects(send(session, [0x00, 0, 0, 0, 0, 0]), { code: 'SHUTTING_DOWN' });
});

t.test('unknown opcodes and other LUNs', async (t) => {
  const fixture = createScsiFixture();
  const session = fixture.open();
  t.match(senseOf(await send(session, [0xc7, 0, 0, 0, 0, 0, 0, 0, 0, 0])), { key: 0x5, asc: 0x20 });
  t.match(senseOf(await send(session, [0x00, 0, 0, 0, 0, 0], { lun: 1 })), { key: 0x5, asc: 0x25 });
  const inquiry = await send(session, [0x12, 0, 0, 0, 96, 0], { lun: 1 });
  t.equal(inquiry.dataIn?.[0], 0x7f, 'peripheral qualifier 3 for a LUN that does not exist');
});
