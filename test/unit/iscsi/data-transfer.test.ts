import t from 'tap';
import { DataOutCollector } from '../../../blockdev/iscsi/data-out-collector.js';
import { planScsiReply, residualOf } from '../../../blockdev/iscsi/data-in-writer.js';
import type { DataOutPdu } from '../../../blockdev/iscsi/pdu-decode.js';

/** Data-out collection (RFC 7143 §4.2.5.2, §11.7-§11.8) and Data-In segmentation with residuals (§11.4.5, §11.7). */

const LIMITS = { firstBurstLength: 8192, maxBurstLength: 16384, maxOutstandingR2T: 2 };
const SEQ = { statSN: 1, expCmdSN: 2, maxCmdSN: 3 };

function collector(length: number, immediate: number, unsolicitedFollows: boolean, limits = LIMITS): DataOutCollector {
  let tag = 100;
  return new DataOutCollector(
    { expectedDataTransferLength: length, immediateData: Buffer.alloc(immediate, 0xaa), unsolicitedFollows, limits },
    { newTargetTransferTag: () => tag++ },
  );
}

function dataOut(ttt: number, dataSN: number, bufferOffset: number, length: number, final: boolean, fill = 0xbb): DataOutPdu {
  return { kind: 'data-out', final, lun: 0, initiatorTaskTag: 1, targetTransferTag: ttt, expStatSN: 0, dataSN, bufferOffset, data: Buffer.alloc(length, fill) };
}

t.test('immediate data alone completes a small write', async (t) => {
  const c = collector(4096, 4096, false);
  t.ok(c.isComplete());
  t.same(c.nextR2Ts(), []);
  t.equal(c.buffer[4095], 0xaa);
});

t.test('immediate + unsolicited up to FirstBurstLength, then R2Ts bounded by MaxBurstLength and MaxOutstandingR2T', async (t) => {
  const c = collector(65536, 1024, true);
  t.same(c.nextR2Ts(), [], 'no R2T while unsolicited data is due');
  t.equal(c.accept(dataOut(0xffffffff, 0, 1024, 4096, false)), undefined);
  t.equal(c.accept(dataOut(0xffffffff, 1, 5120, 3072, true)), undefined);
  const r2ts = c.nextR2Ts();
  t.same(
    r2ts.map((r) => [r.targetTransferTag, r.r2tSN, r.bufferOffset, r.desiredDataTransferLength]),
    [
      [100, 0, 8192, 16384],
      [101, 1, 24576, 16384],
    ],
  );
  t.same(c.nextR2Ts(), [], 'MaxOutstandingR2T reached');
  t.equal(c.accept(dataOut(100, 0, 8192, 8192, false)), undefined);
  t.equal(c.accept(dataOut(100, 1, 16384, 8192, true)), undefined);
  t.same(c.nextR2Ts().map((r) => [r.r2tSN, r.bufferOffset, r.desiredDataTransferLength]), [[2, 40960, 16384]]);
  t.equal(c.accept(dataOut(101, 0, 24576, 16384, true)), undefined);
  t.same(c.nextR2Ts().map((r) => [r.r2tSN, r.bufferOffset, r.desiredDataTransferLength]), [[3, 57344, 8192]]);
  t.equal(c.accept(dataOut(102, 0, 40960, 16384, true)), undefined);
  t.equal(c.accept(dataOut(103, 0, 57344, 8192, true)), undefined);
  t.ok(c.isComplete());
  t.equal(c.buffer[0], 0xaa);
  t.equal(c.buffer[65535], 0xbb);
});

t.test('an unsolicited burst may end early; R2Ts ask for the rest', async (t) => {
  const c = collector(12288, 0, true);
  t.equal(c.accept(dataOut(0xffffffff, 0, 0, 2048, true)), undefined);
  t.same(c.nextR2Ts().map((r) => [r.bufferOffset, r.desiredDataTransferLength]), [[2048, 10240]]);
});

t.test('sequence errors: DataSN, offset, unknown TTT, overrun, early F', async (t) => {
  const base = (): DataOutCollector => {
    const c = collector(32768, 0, false);
    c.nextR2Ts();
    return c;
  };
  t.match(base().accept(dataOut(100, 1, 0, 512, false)), { reason: 'BAD_FIELD', details: { field: 'DataSN' } });
  t.match(base().accept(dataOut(100, 0, 512, 512, false)), { details: { field: 'BufferOffset' } });
  t.match(base().accept(dataOut(999, 0, 0, 512, false)), { details: { field: 'TTT' } });
  t.match(base().accept(dataOut(0xffffffff, 0, 0, 512, false)), { details: { field: 'TTT' } }, 'unsolicited data not allowed');
  t.match(base().accept(dataOut(100, 0, 0, 16385, false)), { details: { field: 'DataSegmentLength' } });
  t.match(base().accept(dataOut(100, 0, 0, 512, true)), { details: { field: 'F' } });
  t.match(DataOutCollector.validateImmediate(8193, 65536, 8192), { reason: 'BAD_FIELD' });
  t.match(DataOutCollector.validateImmediate(4096, 2048, 8192), { reason: 'BAD_FIELD' });
  t.equal(DataOutCollector.validateImmediate(4096, 4096, 8192), undefined);
});

const READ_TASK = {
  command: { initiatorTaskTag: 7, expectedDataTransferLength: 10000, expectedBidiReadLength: undefined },
  direction: 'read' as const,
  r2tCount: 0,
};

t.test('Data-In: segments of MaxRecvDataSegmentLength, F per burst, status collapsed into the last', async (t) => {
  const parts = planScsiReply(READ_TASK, { status: 0, dataIn: Buffer.alloc(10000, 1) }, { maxSegmentBytes: 4096, maxBurstLength: 8192 });
  t.equal(parts.length, 3);
  const pdus = parts.map((part) => part.encode(SEQ));
  t.same(pdus.map((pdu) => pdu.data?.length), [4096, 4096, 1808]);
  t.same(pdus.map((pdu) => pdu.bhs.readUInt32BE(40)), [0, 4096, 8192], 'BufferOffset');
  t.same(pdus.map((pdu) => pdu.bhs.readUInt32BE(36)), [0, 1, 2], 'DataSN');
  t.same(pdus.map((pdu) => pdu.bhs[1]), [0x00, 0x80, 0x81], 'F at the burst end, F+S on the last');
  t.same(parts.map((part) => part.carriesStatus), [false, false, true]);
});

t.test('Data-In with sense: data, then a separate SCSI Response', async (t) => {
  const parts = planScsiReply(READ_TASK, { status: 2, dataIn: Buffer.alloc(100), sense: Buffer.alloc(18, 0x70) }, { maxSegmentBytes: 8192, maxBurstLength: 8192 });
  t.equal(parts.length, 2);
  const [data, response] = parts.map((part) => part.encode(SEQ));
  t.equal(data?.bhs[1], 0x80, 'no S bit');
  t.equal(response?.bhs[0], 0x21);
  t.equal(response?.bhs[3], 2);
  t.equal(response?.data?.readUInt16BE(0), 18, 'SenseLength');
  t.equal(response?.bhs.readUInt32BE(36), 1, 'ExpDataSN counts the Data-In sent');
});

t.test('residuals: underflow and overflow against the expected length', async (t) => {
  t.same(residualOf(512, 4096), { residual: 'underflow', residualCount: 3584 });
  t.same(residualOf(4096, 512), { residual: 'overflow', residualCount: 3584 });
  t.same(residualOf(512, 512), { residual: 'none', residualCount: 0 });
  const short = planScsiReply(READ_TASK, { status: 0, dataIn: Buffer.alloc(36), transferBytes: 96 }, { maxSegmentBytes: 8192, maxBurstLength: 8192 });
  const last = short[0]?.encode(SEQ);
  t.equal(last?.bhs[1], 0x80 | 0x02 | 0x01, 'U bit with status');
  t.equal(last?.bhs.readUInt32BE(44), 10000 - 96);
  const over = planScsiReply({ ...READ_TASK, command: { ...READ_TASK.command, expectedDataTransferLength: 512 } }, { status: 0, dataIn: Buffer.alloc(1024) }, { maxSegmentBytes: 8192, maxBurstLength: 8192 });
  const overPdu = over[0]?.encode(SEQ);
  t.equal(overPdu?.data?.length, 512, 'data cut to the expected length');
  t.equal(overPdu?.bhs[1], 0x80 | 0x04 | 0x01, 'O bit');
  t.equal(overPdu?.bhs.readUInt32BE(44), 512);
  const write = planScsiReply({ ...READ_TASK, direction: 'write', command: { ...READ_TASK.command, expectedDataTransferLength: 4096 } }, { status: 0, transferBytes: 8192 }, { maxSegmentBytes: 8192, maxBurstLength: 8192 });
  const response = write[0]?.encode(SEQ);
  t.equal(response?.bhs[0], 0x21, 'a write gets a SCSI Response');
  t.equal(response?.bhs[1], 0x80 | 0x04);
  t.equal(response?.bhs.readUInt32BE(44), 4096);
});
