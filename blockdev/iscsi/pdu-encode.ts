import { RESERVED_TAG, TargetOpcode } from './iscsi-constants.js';
import { encodeLun, newBhs, type OutgoingPdu } from './pdu-frame.js';

/**
 * Encoders for every PDU the target sends (RFC 7143 §11), pure: fields in,
 * OutgoingPdu out (framePdu adds length, padding and digests).
 */

/** The three sequence numbers most target PDUs carry (§4.2.2). */
export interface SequenceFields {
  readonly statSN: number;
  readonly expCmdSN: number;
  readonly maxCmdSN: number;
}

function writeSequence(bhs: Buffer, fields: SequenceFields): void {
  bhs.writeUInt32BE(fields.statSN >>> 0, 24);
  bhs.writeUInt32BE(fields.expCmdSN >>> 0, 28);
  bhs.writeUInt32BE(fields.maxCmdSN >>> 0, 32);
}

export interface ResidualFields {
  /** Underflow (U) or overflow (O) of the expected data transfer length, and by how much. */
  readonly residual: 'none' | 'underflow' | 'overflow';
  readonly residualCount: number;
}

function residualFlags(fields: ResidualFields): number {
  if (fields.residual === 'overflow') return 0x04;
  if (fields.residual === 'underflow') return 0x02;
  return 0;
}

export type ScsiResponseFields = SequenceFields &
  ResidualFields & {
    readonly initiatorTaskTag: number;
    readonly response: number;
    readonly status: number;
    readonly expDataSN: number;
    readonly sense?: Buffer | undefined;
  };

/** §11.4 SCSI Response; sense data goes in the data segment behind a 2-byte SenseLength (§11.4.7.2). */
export function encodeScsiResponse(fields: ScsiResponseFields): OutgoingPdu {
  const bhs = newBhs(TargetOpcode.SCSI_RESPONSE, 0x80 | residualFlags(fields));
  bhs[2] = fields.response;
  bhs[3] = fields.status;
  bhs.writeUInt32BE(fields.initiatorTaskTag >>> 0, 16);
  writeSequence(bhs, fields);
  bhs.writeUInt32BE(fields.expDataSN >>> 0, 36);
  bhs.writeUInt32BE(fields.residual === 'none' ? 0 : fields.residualCount >>> 0, 44);
  if (fields.sense === undefined || fields.sense.length === 0) {
    return { bhs };
  }
  const data = Buffer.alloc(2 + fields.sense.length);
  data.writeUInt16BE(fields.sense.length, 0);
  fields.sense.copy(data, 2);
  return { bhs, data };
}

export type DataInFields = SequenceFields &
  ResidualFields & {
    readonly final: boolean;
    readonly initiatorTaskTag: number;
    readonly dataSN: number;
    readonly bufferOffset: number;
    readonly status: number | undefined;
    readonly data: Buffer;
  };

/** §11.7 SCSI Data-In; with `status` the S bit carries phase-collapsed status (§11.7.1). */
export function encodeDataIn(fields: DataInFields): OutgoingPdu {
  const withStatus = fields.status !== undefined;
  const flags = (fields.final ? 0x80 : 0) | (withStatus ? 0x01 | residualFlags(fields) : 0);
  const bhs = newBhs(TargetOpcode.DATA_IN, flags);
  bhs[3] = fields.status ?? 0;
  bhs.writeUInt32BE(fields.initiatorTaskTag >>> 0, 16);
  bhs.writeUInt32BE(RESERVED_TAG, 20);
  bhs.writeUInt32BE(withStatus ? fields.statSN >>> 0 : 0, 24);
  bhs.writeUInt32BE(fields.expCmdSN >>> 0, 28);
  bhs.writeUInt32BE(fields.maxCmdSN >>> 0, 32);
  bhs.writeUInt32BE(fields.dataSN >>> 0, 36);
  bhs.writeUInt32BE(fields.bufferOffset >>> 0, 40);
  bhs.writeUInt32BE(withStatus && fields.residual !== 'none' ? fields.residualCount >>> 0 : 0, 44);
  return { bhs, data: fields.data };
}

/** §11.8 Ready To Transfer. StatSN is the next StatSN, not advanced (§11.8.3). */
export function encodeR2T(
  fields: SequenceFields & {
    readonly lun: number;
    readonly initiatorTaskTag: number;
    readonly targetTransferTag: number;
    readonly r2tSN: number;
    readonly bufferOffset: number;
    readonly desiredDataTransferLength: number;
  },
): OutgoingPdu {
  const bhs = newBhs(TargetOpcode.R2T, 0x80);
  encodeLun(fields.lun, bhs, 8);
  bhs.writeUInt32BE(fields.initiatorTaskTag >>> 0, 16);
  bhs.writeUInt32BE(fields.targetTransferTag >>> 0, 20);
  writeSequence(bhs, fields);
  bhs.writeUInt32BE(fields.r2tSN >>> 0, 36);
  bhs.writeUInt32BE(fields.bufferOffset >>> 0, 40);
  bhs.writeUInt32BE(fields.desiredDataTransferLength >>> 0, 44);
  return { bhs };
}

/** §11.19 NOP-In: an answer (ITT from the NOP-Out) or a target ping (ITT reserved, TTT ours). */
export function encodeNopIn(
  fields: SequenceFields & {
    readonly lun: number;
    readonly initiatorTaskTag: number;
    readonly targetTransferTag: number;
    readonly data?: Buffer;
  },
): OutgoingPdu {
  const bhs = newBhs(TargetOpcode.NOP_IN, 0x80);
  encodeLun(fields.lun, bhs, 8);
  bhs.writeUInt32BE(fields.initiatorTaskTag >>> 0, 16);
  bhs.writeUInt32BE(fields.targetTransferTag >>> 0, 20);
  writeSequence(bhs, fields);
  return fields.data === undefined ? { bhs } : { bhs, data: fields.data };
}

/** §11.6 Task Management Function Response. */
export function encodeTaskManagementResponse(
  fields: SequenceFields & { readonly initiatorTaskTag: number; readonly response: number },
): OutgoingPdu {
  const bhs = newBhs(TargetOpcode.TASK_MANAGEMENT_RESPONSE, 0x80);
  bhs[2] = fields.response;
  bhs.writeUInt32BE(fields.initiatorTaskTag >>> 0, 16);
  writeSequence(bhs, fields);
  return { bhs };
}

/** §11.13 Login Response. */
export function encodeLoginResponse(
  fields: SequenceFields & {
    readonly transit: boolean;
    readonly continue: boolean;
    readonly currentStage: number;
    readonly nextStage: number;
    readonly isid: string;
    readonly tsih: number;
    readonly initiatorTaskTag: number;
    /** Status-Class << 8 | Status-Detail. */
    readonly status: number;
    readonly data: Buffer;
  },
): OutgoingPdu {
  const flags =
    (fields.transit ? 0x80 : 0) | (fields.continue ? 0x40 : 0) | ((fields.currentStage & 3) << 2) | (fields.transit ? fields.nextStage & 3 : 0);
  const bhs = newBhs(TargetOpcode.LOGIN_RESPONSE, flags);
  bhs[2] = 0; // Version-max (§11.13.3): 0x00
  bhs[3] = 0; // Version-active
  Buffer.from(fields.isid.padStart(12, '0').slice(0, 12), 'hex').copy(bhs, 8);
  bhs.writeUInt16BE(fields.tsih & 0xffff, 14);
  bhs.writeUInt32BE(fields.initiatorTaskTag >>> 0, 16);
  writeSequence(bhs, fields);
  bhs.writeUInt16BE(fields.status & 0xffff, 36);
  return { bhs, data: fields.data };
}

/** §11.11 Text Response; C set while more of the answer follows, then TTT asks for the next part. */
export function encodeTextResponse(
  fields: SequenceFields & {
    readonly final: boolean;
    readonly continue: boolean;
    readonly lun: number;
    readonly initiatorTaskTag: number;
    readonly targetTransferTag: number;
    readonly data: Buffer;
  },
): OutgoingPdu {
  const bhs = newBhs(TargetOpcode.TEXT_RESPONSE, (fields.final ? 0x80 : 0) | (fields.continue ? 0x40 : 0));
  encodeLun(fields.lun, bhs, 8);
  bhs.writeUInt32BE(fields.initiatorTaskTag >>> 0, 16);
  bhs.writeUInt32BE(fields.targetTransferTag >>> 0, 20);
  writeSequence(bhs, fields);
  return { bhs, data: fields.data };
}

/** §11.15 Logout Response; Time2Wait/Time2Retain are 0 at ErrorRecoveryLevel 0 (nothing to reconnect to). */
export function encodeLogoutResponse(
  fields: SequenceFields & { readonly initiatorTaskTag: number; readonly response: number },
): OutgoingPdu {
  const bhs = newBhs(TargetOpcode.LOGOUT_RESPONSE, 0x80);
  bhs[2] = fields.response;
  bhs.writeUInt32BE(fields.initiatorTaskTag >>> 0, 16);
  writeSequence(bhs, fields);
  bhs.writeUInt16BE(0, 40);
  bhs.writeUInt16BE(0, 42);
  return { bhs };
}

/** §11.17 Reject: the data segment is the complete header of the rejected PDU. */
export function encodeReject(
  fields: SequenceFields & { readonly reason: number; readonly rejectedHeader: Buffer; readonly dataSN?: number },
): OutgoingPdu {
  const bhs = newBhs(TargetOpcode.REJECT, 0x80);
  bhs[2] = fields.reason;
  bhs.writeUInt32BE(RESERVED_TAG, 16);
  writeSequence(bhs, fields);
  bhs.writeUInt32BE((fields.dataSN ?? 0) >>> 0, 36);
  return { bhs, data: Buffer.from(fields.rejectedHeader) };
}

/** §11.9 Asynchronous Message. */
export function encodeAsyncMessage(
  fields: SequenceFields & {
    readonly lun: number;
    readonly asyncEvent: number;
    readonly asyncVCode: number;
    readonly parameters: readonly [number, number, number];
    readonly data?: Buffer;
  },
): OutgoingPdu {
  const bhs = newBhs(TargetOpcode.ASYNC_MESSAGE, 0x80);
  encodeLun(fields.lun, bhs, 8);
  bhs.writeUInt32BE(RESERVED_TAG, 16);
  writeSequence(bhs, fields);
  bhs[36] = fields.asyncEvent;
  bhs[37] = fields.asyncVCode;
  bhs.writeUInt16BE(fields.parameters[0] & 0xffff, 38);
  bhs.writeUInt16BE(fields.parameters[1] & 0xffff, 40);
  bhs.writeUInt16BE(fields.parameters[2] & 0xffff, 42);
  return fields.data === undefined ? { bhs } : { bhs, data: fields.data };
}
