/**
 * Sense data (SPC-4 §4.5): the one way the device server reports a failed
 * command. Handlers throw a ScsiCheckCondition; the dispatcher turns it into
 * a CHECK CONDITION response with fixed-format sense (§4.5.3), or
 * descriptor-format sense (§4.5.2) when the control mode page's D_SENSE bit
 * is set. Pure functions over Buffers.
 */

/** SPC-4 §4.5.6 table 27. */
export const SenseKey = {
  NO_SENSE: 0x0,
  NOT_READY: 0x2,
  MEDIUM_ERROR: 0x3,
  HARDWARE_ERROR: 0x4,
  ILLEGAL_REQUEST: 0x5,
  UNIT_ATTENTION: 0x6,
  DATA_PROTECT: 0x7,
  ABORTED_COMMAND: 0xb,
  MISCOMPARE: 0xe,
} as const;
export type SenseKeyCode = (typeof SenseKey)[keyof typeof SenseKey];

/** Additional sense code and qualifier pairs (SPC-4 Annex D), as ASC << 8 | ASCQ. */
export const Asc = {
  NO_ADDITIONAL_SENSE: 0x0000,
  LOGICAL_UNIT_NOT_READY_MANUAL_INTERVENTION: 0x0403,
  LOGICAL_UNIT_COMMUNICATION_FAILURE: 0x0800,
  WRITE_ERROR: 0x0c00,
  UNRECOVERED_READ_ERROR: 0x1100,
  MISCOMPARE_DURING_VERIFY: 0x1d00,
  PARAMETER_LIST_LENGTH_ERROR: 0x1a00,
  INVALID_COMMAND_OPERATION_CODE: 0x2000,
  LBA_OUT_OF_RANGE: 0x2100,
  INVALID_FIELD_IN_CDB: 0x2400,
  LOGICAL_UNIT_NOT_SUPPORTED: 0x2500,
  INVALID_FIELD_IN_PARAMETER_LIST: 0x2600,
  INVALID_RELEASE_OF_PERSISTENT_RESERVATION: 0x2604,
  WRITE_PROTECTED: 0x2700,
  SPACE_ALLOCATION_FAILED_WRITE_PROTECT: 0x2707,
  POWER_ON_RESET: 0x2900,
  BUS_DEVICE_RESET: 0x2903,
  I_T_NEXUS_LOSS: 0x2907,
  MODE_PARAMETERS_CHANGED: 0x2a01,
  RESERVATIONS_PREEMPTED: 0x2a03,
  RESERVATIONS_RELEASED: 0x2a04,
  REGISTRATIONS_PREEMPTED: 0x2a05,
  COMMANDS_CLEARED_BY_ANOTHER_INITIATOR: 0x2f00,
  SAVING_PARAMETERS_NOT_SUPPORTED: 0x3900,
  INTERNAL_TARGET_FAILURE: 0x4400,
  MEDIUM_REMOVAL_PREVENTED: 0x5302,
  INSUFFICIENT_REGISTRATION_RESOURCES: 0x5504,
} as const;
export type AscCode = (typeof Asc)[keyof typeof Asc];

/** Sense-key specific field pointer (SPC-4 §4.5.2.4.2): which byte (and bit) was wrong. */
export interface FieldPointer {
  /** true: the byte is in the CDB (C/D = 1); false: in the parameter list. */
  readonly inCdb: boolean;
  readonly byte: number;
  readonly bit?: number;
}

export interface SenseInfo {
  readonly senseKey: SenseKeyCode;
  readonly asc: AscCode;
  readonly fieldPointer?: FieldPointer;
  /** The INFORMATION field (e.g. the miscompare offset, SBC-3 §5.3). */
  readonly information?: bigint;
}

/** Thrown by command handlers; caught by the dispatcher, never escapes the device server. */
export class ScsiCheckCondition extends Error {
  readonly sense: SenseInfo;

  constructor(sense: SenseInfo) {
    super(`CHECK CONDITION key 0x${sense.senseKey.toString(16)} asc/ascq 0x${sense.asc.toString(16).padStart(4, '0')}`);
    this.name = 'ScsiCheckCondition';
    this.sense = sense;
  }
}

export function invalidFieldInCdb(byte: number, bit?: number): ScsiCheckCondition {
  const fieldPointer: FieldPointer = bit === undefined ? { inCdb: true, byte } : { inCdb: true, byte, bit };
  return new ScsiCheckCondition({ senseKey: SenseKey.ILLEGAL_REQUEST, asc: Asc.INVALID_FIELD_IN_CDB, fieldPointer });
}

export function invalidFieldInParameterList(byte: number, bit?: number): ScsiCheckCondition {
  const fieldPointer: FieldPointer = bit === undefined ? { inCdb: false, byte } : { inCdb: false, byte, bit };
  return new ScsiCheckCondition({
    senseKey: SenseKey.ILLEGAL_REQUEST,
    asc: Asc.INVALID_FIELD_IN_PARAMETER_LIST,
    fieldPointer,
  });
}

export function illegalRequest(asc: AscCode): ScsiCheckCondition {
  return new ScsiCheckCondition({ senseKey: SenseKey.ILLEGAL_REQUEST, asc });
}

export function lbaOutOfRange(): ScsiCheckCondition {
  return illegalRequest(Asc.LBA_OUT_OF_RANGE);
}

export function miscompare(offsetBytes: number): ScsiCheckCondition {
  return new ScsiCheckCondition({
    senseKey: SenseKey.MISCOMPARE,
    asc: Asc.MISCOMPARE_DURING_VERIFY,
    information: BigInt(offsetBytes),
  });
}

export function writeProtected(): ScsiCheckCondition {
  return new ScsiCheckCondition({ senseKey: SenseKey.DATA_PROTECT, asc: Asc.WRITE_PROTECTED });
}

/** SPC-4 §4.5.3 fixed format: 18 bytes. */
export const FIXED_SENSE_BYTES = 18;

export function encodeFixedSense(sense: SenseInfo): Buffer {
  const out = Buffer.alloc(FIXED_SENSE_BYTES);
  // VALID (bit 7) says the INFORMATION field is meaningful; response code 0x70 = current error.
  out[0] = sense.information === undefined ? 0x70 : 0xf0;
  out[2] = sense.senseKey;
  if (sense.information !== undefined) {
    // Fixed format carries only 4 bytes of INFORMATION (§4.5.3); larger values need descriptor format.
    out.writeUInt32BE(Number(BigInt.asUintN(32, sense.information)), 3);
  }
  out[7] = FIXED_SENSE_BYTES - 8;
  out[12] = sense.asc >> 8;
  out[13] = sense.asc & 0xff;
  if (sense.fieldPointer !== undefined) {
    writeSenseKeySpecific(out, 15, sense.fieldPointer);
  }
  return out;
}

/** SPC-4 §4.5.2: header + information descriptor (§4.5.2.2) + sense key specific descriptor (§4.5.2.4). */
export function encodeDescriptorSense(sense: SenseInfo): Buffer {
  const informationBytes = sense.information === undefined ? 0 : 12;
  const specificBytes = sense.fieldPointer === undefined ? 0 : 8;
  const out = Buffer.alloc(8 + informationBytes + specificBytes);
  out[0] = 0x72;
  out[1] = sense.senseKey;
  out[2] = sense.asc >> 8;
  out[3] = sense.asc & 0xff;
  out[7] = informationBytes + specificBytes;
  let cursor = 8;
  if (sense.information !== undefined) {
    out[cursor] = 0x00;
    out[cursor + 1] = 0x0a;
    out[cursor + 2] = 0x80;
    out.writeBigUInt64BE(BigInt.asUintN(64, sense.information), cursor + 4);
    cursor += 12;
  }
  if (sense.fieldPointer !== undefined) {
    out[cursor] = 0x02;
    out[cursor + 1] = 0x06;
    writeSenseKeySpecific(out, cursor + 4, sense.fieldPointer);
  }
  return out;
}

function writeSenseKeySpecific(out: Buffer, at: number, pointer: FieldPointer): void {
  // SKSV | C/D | BPV | BIT POINTER, then the 2-byte FIELD POINTER.
  let flags = 0x80;
  if (pointer.inCdb) {
    flags |= 0x40;
  }
  if (pointer.bit !== undefined) {
    flags |= 0x08 | (pointer.bit & 0x07);
  }
  out[at] = flags;
  out.writeUInt16BE(pointer.byte, at + 1);
}

export function encodeSense(sense: SenseInfo, descriptorFormat: boolean): Buffer {
  return descriptorFormat ? encodeDescriptorSense(sense) : encodeFixedSense(sense);
}
