import t from 'tap';
import { crc32c } from '../../../blockdev/iscsi/crc32c.js';
import { decodeInitiatorPdu, type InitiatorPdu } from '../../../blockdev/iscsi/pdu-decode.js';
import {
  encodeAsyncMessage,
  encodeDataIn,
  encodeLoginResponse,
  encodeLogoutResponse,
  encodeNopIn,
  encodeR2T,
  encodeReject,
  encodeScsiResponse,
  encodeTaskManagementResponse,
  encodeTextResponse,
} from '../../../blockdev/iscsi/pdu-encode.js';
import { dataSegmentLengthOf, decodeLun, encodeLun, framePdu, opcodeOf } from '../../../blockdev/iscsi/pdu-frame.js';
import { PduReader, type ReadResult } from '../../../blockdev/iscsi/pdu-reader.js';
import { dataOut, loginRequest, nopOut, scsiCommand, taskManagement, textRequest, wire } from './helpers/initiator-pdus.js';

/** The PDU codec: target encoders, initiator decoders, the streaming reader (RFC 7143 §11). */

const SEQ = { statSN: 7, expCmdSN: 100, maxCmdSN: 227 };

function readAll(reader: PduReader): ReadResult[] {
  const results: ReadResult[] = [];
  for (;;) {
    const result = reader.next();
    if (result === undefined || result.kind === 'fatal') {
      if (result !== undefined) results.push(result);
      return results;
    }
    results.push(result);
  }
}

function decoded(result: ReadResult | undefined): InitiatorPdu {
  if (result?.kind !== 'pdu') throw new Error(`expected a PDU, got ${result?.kind}`);
  const pdu = decodeInitiatorPdu(result.pdu);
  if (pdu instanceof Error) throw pdu;
  return pdu;
}

t.test('target PDUs carry their fields where RFC 7143 puts them', async (t) => {
  const response = encodeScsiResponse({ ...SEQ, initiatorTaskTag: 0x1234, response: 0, status: 2, expDataSN: 3, residual: 'underflow', residualCount: 512, sense: Buffer.from([0x70, 0, 5]) });
  t.equal(opcodeOf(response.bhs), 0x21);
  t.equal(response.bhs[1], 0x82, 'F and U');
  t.equal(response.bhs[3], 2);
  t.equal(response.bhs.readUInt32BE(16), 0x1234);
  t.equal(response.bhs.readUInt32BE(24), 7);
  t.equal(response.bhs.readUInt32BE(28), 100);
  t.equal(response.bhs.readUInt32BE(32), 227);
  t.equal(response.bhs.readUInt32BE(36), 3);
  t.equal(response.bhs.readUInt32BE(44), 512);
  t.same([...(response.data ?? Buffer.alloc(0))], [0, 3, 0x70, 0, 5], 'SenseLength then sense');

  const dataIn = encodeDataIn({ ...SEQ, final: true, initiatorTaskTag: 9, dataSN: 4, bufferOffset: 8192, status: 0, data: Buffer.alloc(10), residual: 'overflow', residualCount: 6 });
  t.equal(dataIn.bhs[1], 0x80 | 0x04 | 0x01, 'F, O, S');
  t.equal(dataIn.bhs.readUInt32BE(20), 0xffffffff, 'TTT reserved');
  t.equal(dataIn.bhs.readUInt32BE(36), 4);
  t.equal(dataIn.bhs.readUInt32BE(40), 8192);
  t.equal(dataIn.bhs.readUInt32BE(44), 6);
  const dataInNoStatus = encodeDataIn({ ...SEQ, final: false, initiatorTaskTag: 9, dataSN: 0, bufferOffset: 0, status: undefined, data: Buffer.alloc(1), residual: 'overflow', residualCount: 6 });
  t.equal(dataInNoStatus.bhs[1], 0, 'no S: no residual flags');
  t.equal(dataInNoStatus.bhs.readUInt32BE(24), 0, 'no StatSN without status');

  const r2t = encodeR2T({ ...SEQ, lun: 0, initiatorTaskTag: 5, targetTransferTag: 77, r2tSN: 2, bufferOffset: 65536, desiredDataTransferLength: 4096 });
  t.equal(opcodeOf(r2t.bhs), 0x31);
  t.same([r2t.bhs.readUInt32BE(20), r2t.bhs.readUInt32BE(36), r2t.bhs.readUInt32BE(40), r2t.bhs.readUInt32BE(44)], [77, 2, 65536, 4096]);

  const login = encodeLoginResponse({ ...SEQ, transit: true, continue: false, currentStage: 1, nextStage: 3, isid: '400001370000', tsih: 42, initiatorTaskTag: 1, status: 0x0203, data: Buffer.from('a=b\0') });
  t.equal(login.bhs[1], 0x80 | (1 << 2) | 3);
  t.equal(login.bhs.subarray(8, 14).toString('hex'), '400001370000');
  t.equal(login.bhs.readUInt16BE(14), 42);
  t.equal(login.bhs[36], 0x02);
  t.equal(login.bhs[37], 0x03);

  t.equal(opcodeOf(encodeNopIn({ ...SEQ, lun: 0, initiatorTaskTag: 1, targetTransferTag: 0xffffffff }).bhs), 0x20);
  t.equal(encodeTaskManagementResponse({ ...SEQ, initiatorTaskTag: 1, response: 1 }).bhs[2], 1);
  const text = encodeTextResponse({ ...SEQ, final: false, continue: true, lun: 0, initiatorTaskTag: 3, targetTransferTag: 4, data: Buffer.alloc(0) });
  t.equal(text.bhs[1], 0x40);
  t.equal(encodeLogoutResponse({ ...SEQ, initiatorTaskTag: 1, response: 0 }).bhs.readUInt16BE(40), 0, 'Time2Wait 0');
  const rejected = Buffer.alloc(48, 0xab);
  const reject = encodeReject({ ...SEQ, reason: 0x09, rejectedHeader: rejected });
  t.equal(reject.bhs[2], 0x09);
  t.same(reject.data, rejected, 'Reject carries the rejected header');
  t.equal(encodeAsyncMessage({ ...SEQ, lun: 0, asyncEvent: 1, asyncVCode: 0, parameters: [0, 0, 5] }).bhs[36], 1);
});

t.test('framing pads the data segment, sets its length and adds digests', async (t) => {
  const pdu = encodeNopIn({ ...SEQ, lun: 0, initiatorTaskTag: 1, targetTransferTag: 0xffffffff, data: Buffer.from('hello') });
  const parts = framePdu(pdu, { header: true, data: true });
  const bytes = Buffer.concat(parts);
  t.equal(bytes.length, 48 + 4 + 5 + 3 + 4);
  t.equal(dataSegmentLengthOf(bytes), 5);
  t.equal(bytes.readUInt32LE(48), crc32c(bytes.subarray(0, 48)), 'header digest over the BHS');
  t.equal(bytes.readUInt32LE(60), crc32c(bytes.subarray(52, 60)), 'data digest over data and padding');
});

t.test('LUN encoding round-trips for peripheral and flat addressing', async (t) => {
  for (const lun of [0, 1, 255, 256, 16383]) {
    const buffer = Buffer.alloc(8);
    encodeLun(lun, buffer, 0);
    t.equal(decodeLun(buffer), lun);
  }
  t.equal(decodeLun(Buffer.from([0, 0, 0, 1, 0, 0, 0, 0])), 0x7fffffff, 'multi-level LUNs are none of ours');
});

t.test('initiator PDUs decode from the wire, whole and split at every byte', async (t) => {
  const stream = Buffer.concat([
    wire(loginRequest({ transit: true, csg: 1, nsg: 3, pairs: [{ key: 'InitiatorName', value: 'iqn.x' }] })),
    wire(scsiCommand({ itt: 3, edtl: 4096, cmdSN: 5, write: true, final: false, cdb: Buffer.from([0x2a, 0, 0, 0, 0, 1, 0, 0, 8, 0]), data: Buffer.alloc(1000, 1) })),
    wire(dataOut({ final: true, itt: 3, ttt: 0xffffffff, dataSN: 0, bufferOffset: 1000, data: Buffer.alloc(3, 2) })),
    wire(nopOut({ immediate: true, itt: 9, cmdSN: 6, data: Buffer.from('ping') })),
    wire(taskManagement({ fn: 1, itt: 10, referencedTaskTag: 3, cmdSN: 6, refCmdSN: 5 })),
    wire(textRequest({ itt: 11, cmdSN: 6, pairs: [{ key: 'SendTargets', value: 'All' }] })),
  ]);
  for (let cut = 0; cut <= stream.length; cut += 1) {
    const reader = new PduReader({ maxDataSegmentBytes: 8192 });
    reader.push(stream.subarray(0, cut));
    const first = readAll(reader);
    reader.push(stream.subarray(cut));
    const results = [...first, ...readAll(reader)];
    if (results.length !== 6) {
      t.fail(`cut at ${cut}: ${results.length} PDUs`);
      return;
    }
  }
  const reader = new PduReader({ maxDataSegmentBytes: 8192 });
  reader.push(stream);
  const pdus = readAll(reader).map(decoded);
  const [login, command, data, nop, tmf, text] = pdus;
  t.match(login, { kind: 'login', transit: true, currentStage: 1, nextStage: 3, isid: '400001370000', tsih: 0 });
  t.match(command, { kind: 'scsi-command', write: true, final: false, initiatorTaskTag: 3, expectedDataTransferLength: 4096, cmdSN: 5, attribute: 'simple' });
  if (command?.kind === 'scsi-command') {
    t.equal(command.data.length, 1000);
    t.equal(command.cdb[0], 0x2a);
    t.equal(command.cdb.length, 16);
  }
  t.match(data, { kind: 'data-out', final: true, initiatorTaskTag: 3, targetTransferTag: 0xffffffff, bufferOffset: 1000 });
  t.match(nop, { kind: 'nop-out', immediate: true, initiatorTaskTag: 9 });
  t.match(tmf, { kind: 'task-management', functionCode: 1, referencedTaskTag: 3, refCmdSN: 5 });
  t.match(text, { kind: 'text', final: true, initiatorTaskTag: 11 });
});

t.test('digests: a good stream passes, a bad header digest is fatal, a bad data digest rejects one PDU', async (t) => {
  const digests = { header: true, data: true };
  const nop = wire(nopOut({ immediate: true, itt: 1, cmdSN: 1, data: Buffer.from('abc') }), digests);
  const good = new PduReader({ maxDataSegmentBytes: 8192 });
  good.setDigests(digests);
  good.push(nop);
  t.equal(good.next()?.kind, 'pdu');

  const badHeader = Buffer.from(nop);
  badHeader[48] = (badHeader[48] ?? 0) ^ 0xff;
  const headerReader = new PduReader({ maxDataSegmentBytes: 8192 });
  headerReader.setDigests(digests);
  headerReader.push(badHeader);
  t.match(headerReader.next(), { kind: 'fatal', error: { reason: 'HEADER_DIGEST' } });

  const badData = Buffer.from(nop);
  badData[badData.length - 1] = (badData[badData.length - 1] ?? 0) ^ 0xff;
  const dataReader = new PduReader({ maxDataSegmentBytes: 8192 });
  dataReader.setDigests(digests);
  dataReader.push(Buffer.concat([badData, nop]));
  t.match(dataReader.next(), { kind: 'data-digest-error' });
  t.equal(dataReader.next()?.kind, 'pdu', 'the stream continues after a data digest error');
});

t.test('a data segment over the declared limit is refused before it is buffered', async (t) => {
  const reader = new PduReader({ maxDataSegmentBytes: 8192 });
  const header = Buffer.alloc(48);
  header[0] = 0x01;
  header.writeUIntBE(8193, 5, 3);
  reader.push(header);
  t.match(reader.next(), { kind: 'fatal', error: { code: 'PROTOCOL_ERROR', reason: 'TOO_LARGE' } });
  reader.push(Buffer.alloc(100));
  t.equal(reader.next()?.kind, 'fatal', 'stays failed');
  t.equal(reader.bufferedBytes(), 0, 'nothing held');
});

t.test('malformed fields decode to a protocol error, unknown opcodes to "unknown"', async (t) => {
  const loginTC = loginRequest({ transit: true, continue: true, csg: 0, nsg: 1, pairs: [] });
  t.match(decodeInitiatorPdu({ bhs: loginTC.bhs, ahs: Buffer.alloc(0), data: Buffer.alloc(0) }), { reason: 'BAD_FIELD' });
  const reservedAttr = scsiCommand({ itt: 1, edtl: 0, cmdSN: 1, cdb: Buffer.alloc(16) });
  reservedAttr.bhs[1] = 0x87;
  t.match(decodeInitiatorPdu({ bhs: reservedAttr.bhs, ahs: Buffer.alloc(0), data: Buffer.alloc(0) }), { reason: 'BAD_FIELD' });
  const nonImmediatePing = nopOut({ itt: 0xffffffff, cmdSN: 1 });
  t.match(decodeInitiatorPdu({ bhs: nonImmediatePing.bhs, ahs: Buffer.alloc(0), data: Buffer.alloc(0) }), { reason: 'BAD_FIELD' });
  const unknown = Buffer.alloc(48);
  unknown[0] = 0x1c;
  t.match(decodeInitiatorPdu({ bhs: unknown, ahs: Buffer.alloc(0), data: Buffer.alloc(0) }), { kind: 'unknown', opcode: 0x1c });
  const badAhs = scsiCommand({ itt: 1, edtl: 0, cmdSN: 1, cdb: Buffer.alloc(16) });
  t.match(decodeInitiatorPdu({ bhs: badAhs.bhs, ahs: Buffer.from([0, 200, 1, 0]), data: Buffer.alloc(0) }), { reason: 'BAD_FIELD' });
  const extended = decodeInitiatorPdu({ bhs: badAhs.bhs, ahs: Buffer.from([0, 17, 1, 0, ...Array.from({ length: 16 }, (_, i) => i + 1)]), data: Buffer.alloc(0) });
  t.equal(!(extended instanceof Error) && extended.kind === 'scsi-command' ? extended.cdb.length : -1, 32, 'Extended CDB AHS extends the CDB to 32 bytes');
});

t.test('random bytes never throw out of the reader or the decoder', async (t) => {
  let seed = 12345;
  const random = (): number => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed >>> 16;
  };
  const deadline = Date.now() + 1500;
  let rounds = 0;
  while (Date.now() < deadline && rounds < 3000) {
    rounds += 1;
    const reader = new PduReader({ maxDataSegmentBytes: 4096 });
    reader.setDigests({ header: (rounds & 1) === 1, data: (rounds & 2) === 2 });
    const bytes = Buffer.alloc(48 + (random() % 600));
    for (let i = 0; i < bytes.length; i += 1) bytes[i] = random() & 0xff;
    bytes.writeUIntBE(random() % 300, 5, 3);
    bytes[4] = random() % 4;
    reader.push(bytes);
    for (const result of readAll(reader)) {
      if (result.kind === 'pdu') decodeInitiatorPdu(result.pdu);
    }
  }
  t.ok(rounds > 100, `${rounds} random streams survived`);
});

t.test('bytes spanning socket chunks come from the injected allocator; a PDU inside one chunk is a view', async (t) => {
  const data = Buffer.alloc(9000);
  for (let index = 0; index < data.length; index += 1) data[index] = index % 251;
  const pdu = wire(dataOut({ final: true, itt: 3, ttt: 7, dataSN: 0, bufferOffset: 0, data }));
  const lent: number[] = [];
  const reader = new PduReader({ maxDataSegmentBytes: 16384, allocate: (lengthBytes) => {
    lent.push(lengthBytes);
    return Buffer.alloc(lengthBytes);
  } });
  reader.push(pdu.subarray(0, 4000));
  reader.push(pdu.subarray(4000));
  const [split] = readAll(reader);
  if (split?.kind !== 'pdu') throw new Error('no PDU from the split stream');
  t.same(split.pdu.data, data, 'the joined data is exact');
  t.ok(lent.includes(9000 + ((4 - (9000 % 4)) % 4)), `the data segment was joined in lent memory (${lent.join(', ')})`);
  lent.length = 0;
  reader.push(pdu);
  const [whole] = readAll(reader);
  if (whole?.kind !== 'pdu') throw new Error('no PDU from the whole stream');
  t.same(whole.pdu.data, data);
  t.same(lent, [], 'nothing allocated for a PDU inside one chunk');
});
