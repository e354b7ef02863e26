import { ScsiResponseCode } from './iscsi-constants.js';
import type { OutgoingPdu } from './pdu-frame.js';
import {
  type DataInFields,
  encodeDataIn,
  encodeScsiResponse,
  type ResidualFields,
  type ScsiResponseFields,
  type SequenceFields,
} from './pdu-encode.js';
import type { ScsiDataDirection, ScsiResponse } from './scsi/scsi-task.js';

/**
 * Turns a ScsiResponse into the PDUs that answer the command (RFC 7143
 * §4.2.5.1, §11.4, §11.7), pure: Data-In PDUs of at most the initiator's
 * MaxRecvDataSegmentLength, F at the end of every MaxBurstLength sequence,
 * status collapsed into the last Data-In when there is no sense data
 * (§11.7.1: S only without sense), else a separate SCSI Response. The
 * residual compares what the CDB moves with the expected transfer length.
 */

/** What the reply needs of its command (a TaskState is one, so nothing is built per answer). */
export interface ReplyTask {
  readonly command: {
    readonly initiatorTaskTag: number;
    readonly expectedDataTransferLength: number;
    readonly expectedBidiReadLength: number | undefined;
  };
  readonly direction: ScsiDataDirection;
  /** R2Ts already sent for this task: ExpDataSN counts them (§11.4.8). */
  readonly r2tCount: number;
}

export interface ReplyLimits {
  readonly maxSegmentBytes: number;
  readonly maxBurstLength: number;
}

/** One PDU of the reply; `carriesStatus` PDUs take a StatSN (§4.2.2.2). Called as part.encode(…). */
export interface ReplyPart {
  readonly carriesStatus: boolean;
  readonly encode: (sequence: SequenceFields) => OutgoingPdu;
}

const EMPTY = Buffer.alloc(0);
/** The usual residual, shared: no object per reply. */
const NO_RESIDUAL: ResidualFields = { residual: 'none', residualCount: 0 };

/** §11.4.5: underflow when the command moved less than expected, overflow when more. */
export function residualOf(transferBytes: number, expectedBytes: number): ResidualFields {
  if (transferBytes > expectedBytes) return { residual: 'overflow', residualCount: transferBytes - expectedBytes };
  if (transferBytes < expectedBytes) return { residual: 'underflow', residualCount: expectedBytes - transferBytes };
  return NO_RESIDUAL;
}

function readLimitOf(task: ReplyTask): number {
  if (task.direction === 'read') return task.command.expectedDataTransferLength;
  if (task.direction === 'bidirectional') return task.command.expectedBidiReadLength ?? 0;
  return 0;
}

/**
 * A prepared PDU is one object: its encoder's fields, the sequence numbers
 * written in when it is sent (StatSN is assigned then), and a shared
 * `encode` that reads them through `this`. No closure, no spread and no
 * second field object per PDU (perf: those were a visible share of the
 * allocations at 4k qd1 and qd32).
 */
type WritableSequence = { -readonly [K in keyof SequenceFields]: number };
type Prepared<Fields> = WritableSequence & Omit<Fields, keyof SequenceFields> & ReplyPart;

function setSequence(part: WritableSequence, sequence: SequenceFields): void {
  part.statSN = sequence.statSN;
  part.expCmdSN = sequence.expCmdSN;
  part.maxCmdSN = sequence.maxCmdSN;
}

function encodeDataInPart(this: Prepared<DataInFields>, sequence: SequenceFields): OutgoingPdu {
  setSequence(this, sequence);
  return encodeDataIn(this);
}

function encodeResponsePart(this: Prepared<ScsiResponseFields>, sequence: SequenceFields): OutgoingPdu {
  setSequence(this, sequence);
  return encodeScsiResponse(this);
}

export function planScsiReply(task: ReplyTask, response: ScsiResponse, limits: ReplyLimits): ReplyPart[] {
  const dataIn = response.dataIn ?? EMPTY;
  const transferBytes = response.transferBytes ?? dataIn.length;
  const residual = residualOf(transferBytes, task.command.expectedDataTransferLength);
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
    const part: Prepared<DataInFields> = {
      carriesStatus: withStatus,
      encode: encodeDataInPart,
      statSN: 0,
      expCmdSN: 0,
      maxCmdSN: 0,
      residual: residual.residual,
      residualCount: residual.residualCount,
      final: end === burstEnd,
      initiatorTaskTag: task.command.initiatorTaskTag,
      dataSN,
      bufferOffset: offset,
      data: end - offset === data.length ? data : data.subarray(offset, end),
      status: withStatus ? response.status : undefined,
    };
    parts.push(part);
    dataSN += 1;
    offset = end;
  }
  if (!collapse) {
    const part: Prepared<ScsiResponseFields> = {
      carriesStatus: true,
      encode: encodeResponsePart,
      statSN: 0,
      expCmdSN: 0,
      maxCmdSN: 0,
      residual: residual.residual,
      residualCount: residual.residualCount,
      initiatorTaskTag: task.command.initiatorTaskTag,
      response: ScsiResponseCode.COMMAND_COMPLETED,
      status: response.status,
      expDataSN: dataSN + task.r2tCount,
      sense: hasSense ? response.sense : undefined,
    };
    parts.push(part);
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
          initiatorTaskTag: task.command.initiatorTaskTag,
          response: ScsiResponseCode.TARGET_FAILURE,
          status: 0,
          expDataSN: task.r2tCount,
        }),
    },
  ];
}
