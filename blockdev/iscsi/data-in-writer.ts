import { ScsiResponseCode } from './iscsi-constants.js';
import type { OutgoingPdu } from './pdu-frame.js';
import { encodeDataIn, encodeScsiResponse, type ResidualFields, type SequenceFields } from './pdu-encode.js';
import type { ScsiDataDirection, ScsiResponse } from './scsi/scsi-task.js';

/**
 * Turns a ScsiResponse into the PDUs that answer the command (RFC 7143
 * §4.2.5.1, §11.4, §11.7), pure: Data-In PDUs of at most the initiator's
 * MaxRecvDataSegmentLength, F at the end of every MaxBurstLength sequence,
 * status collapsed into the last Data-In when there is no sense data
 * (§11.7.1: S only without sense), else a separate SCSI Response. The
 * residual compares what the CDB moves with the expected transfer length.
 */

export interface ReplyTask {
  readonly initiatorTaskTag: number;
  readonly direction: ScsiDataDirection;
  readonly expectedDataTransferLength: number;
  readonly expectedBidiReadLength: number | undefined;
  /** R2Ts already sent for this task: ExpDataSN counts them (§11.4.8). */
  readonly r2tCount: number;
}

export interface ReplyLimits {
  readonly maxSegmentBytes: number;
  readonly maxBurstLength: number;
}

/** One PDU of the reply; `carriesStatus` PDUs take a StatSN (§4.2.2.2). */
export interface ReplyPart {
  readonly carriesStatus: boolean;
  readonly encode: (sequence: SequenceFields) => OutgoingPdu;
}

const EMPTY = Buffer.alloc(0);

/** §11.4.5: underflow when the command moved less than expected, overflow when more. */
export function residualOf(transferBytes: number, expectedBytes: number): ResidualFields {
  if (transferBytes > expectedBytes) return { residual: 'overflow', residualCount: transferBytes - expectedBytes };
  if (transferBytes < expectedBytes) return { residual: 'underflow', residualCount: expectedBytes - transferBytes };
  return { residual: 'none', residualCount: 0 };
}

function readLimitOf(task: ReplyTask): number {
  if (task.direction === 'read') return task.expectedDataTransferLength;
  if (task.direction === 'bidirectional') return task.expectedBidiReadLength ?? 0;
  return 0;
}

const NO_RESIDUAL: ResidualFields = { residual: 'none', residualCount: 0 };

/** The sequence fields of a prepared PDU, filled in when it is sent (StatSN is assigned then). */
function setSequence(target: { statSN: number; expCmdSN: number; maxCmdSN: number }, sequence: SequenceFields): void {
  target.statSN = sequence.statSN;
  target.expCmdSN = sequence.expCmdSN;
  target.maxCmdSN = sequence.maxCmdSN;
}

/**
 * One Data-In PDU of a reply: its fields, and the sequence numbers written
 * in when it is sent (StatSN is assigned then). One object per PDU, no
 * closure and no spread (perf: per-PDU field objects and closures were a
 * visible share of the allocations at 4k qd1 and qd32).
 */
class DataInReply implements ReplyPart {
  readonly carriesStatus: boolean;
  statSN = 0;
  expCmdSN = 0;
  maxCmdSN = 0;
  readonly residual: ResidualFields['residual'];
  readonly residualCount: number;
  readonly final: boolean;
  readonly initiatorTaskTag: number;
  readonly dataSN: number;
  readonly bufferOffset: number;
  readonly data: Buffer;
  readonly status: number | undefined;

  constructor(fields: Omit<DataInReply, 'statSN' | 'expCmdSN' | 'maxCmdSN' | 'encode'>) {
    this.carriesStatus = fields.carriesStatus;
    this.residual = fields.residual;
    this.residualCount = fields.residualCount;
    this.final = fields.final;
    this.initiatorTaskTag = fields.initiatorTaskTag;
    this.dataSN = fields.dataSN;
    this.bufferOffset = fields.bufferOffset;
    this.data = fields.data;
    this.status = fields.status;
  }

  encode(sequence: SequenceFields): OutgoingPdu {
    setSequence(this, sequence);
    return encodeDataIn(this);
  }
}

/** The SCSI Response PDU of a reply (status not collapsed into Data-In), as DataInReply. */
class StatusReply implements ReplyPart {
  readonly carriesStatus = true;
  statSN = 0;
  expCmdSN = 0;
  maxCmdSN = 0;
  readonly residual: ResidualFields['residual'];
  readonly residualCount: number;
  readonly initiatorTaskTag: number;
  readonly response: number;
  readonly status: number;
  readonly expDataSN: number;
  readonly sense: Buffer | undefined;

  constructor(fields: Omit<StatusReply, 'carriesStatus' | 'statSN' | 'expCmdSN' | 'maxCmdSN' | 'encode'>) {
    this.residual = fields.residual;
    this.residualCount = fields.residualCount;
    this.initiatorTaskTag = fields.initiatorTaskTag;
    this.response = fields.response;
    this.status = fields.status;
    this.expDataSN = fields.expDataSN;
    this.sense = fields.sense;
  }

  encode(sequence: SequenceFields): OutgoingPdu {
    setSequence(this, sequence);
    return encodeScsiResponse(this);
  }
}

export function planScsiReply(task: ReplyTask, response: ScsiResponse, limits: ReplyLimits): ReplyPart[] {
  const dataIn = response.dataIn ?? EMPTY;
  const transferBytes = response.transferBytes ?? dataIn.length;
  const residual = transferBytes === task.expectedDataTransferLength ? NO_RESIDUAL : residualOf(transferBytes, task.expectedDataTransferLength);
  const readLimit = readLimitOf(task);
  const data = dataIn.length > readLimit ? dataIn.subarray(0, readLimit) : dataIn;
  const hasSense = response.sense !== undefined && response.sense.length > 0;
  const collapse = data.length > 0 && !hasSense;
  const parts: ReplyPart[] = [];
  const segment = Math.max(512, limits.maxSegmentBytes);
  const burst = Math.max(segment, limits.maxBurstLength);
  let dataSN = 0;
  for (let offset = 0; offset < data.length; ) {
    const burstEnd = Math.min(data.length, (Math.floor(offset / burst) + 1) * burst);
    const end = Math.min(burstEnd, offset + segment);
    const withStatus = end === data.length && collapse;
    parts.push(
      new DataInReply({
        carriesStatus: withStatus,
        residual: residual.residual,
        residualCount: residual.residualCount,
        final: end === burstEnd,
        initiatorTaskTag: task.initiatorTaskTag,
        dataSN,
        bufferOffset: offset,
        data: end - offset === data.length ? data : data.subarray(offset, end),
        status: withStatus ? response.status : undefined,
      }),
    );
    dataSN += 1;
    offset = end;
  }
  if (!collapse) {
    parts.push(
      new StatusReply({
        residual: residual.residual,
        residualCount: residual.residualCount,
        initiatorTaskTag: task.initiatorTaskTag,
        response: ScsiResponseCode.COMMAND_COMPLETED,
        status: response.status,
        expDataSN: dataSN + task.r2tCount,
        sense: hasSense ? response.sense : undefined,
      }),
    );
  }
  return parts;
}

/** The answer when the device is gone mid-command: iSCSI Response "target failure" (§11.4.3). */
export function planTargetFailure(task: ReplyTask): ReplyPart[] {
  return [
    {
      carriesStatus: true,
      encode: (sequence) =>
        encodeScsiResponse({
          ...sequence,
          residual: 'none',
          residualCount: 0,
          initiatorTaskTag: task.initiatorTaskTag,
          response: ScsiResponseCode.TARGET_FAILURE,
          status: 0,
          expDataSN: task.r2tCount,
        }),
    },
  ];
}
