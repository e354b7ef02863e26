import { InitiatorOpcode, RESERVED_TAG } from './iscsi-constants.js';
import { decodeLun, isFinal, isImmediate, opcodeOf, type RawPdu } from './pdu-frame.js';
import { IscsiProtocolError } from './protocol-error.js';
import type { ScsiTaskAttribute } from './scsi/scsi-task.js';

/**
 * Decoders for every PDU an initiator sends (RFC 7143 §11), pure functions
 * from a framed RawPdu to a typed message or an IscsiProtocolError.
 */

export interface ScsiCommandPdu {
  readonly kind: 'scsi-command';
  readonly immediate: boolean;
  /** F: no unsolicited Data-Out PDUs follow (§11.3.1). */
  readonly final: boolean;
  readonly read: boolean;
  readonly write: boolean;
  readonly attribute: ScsiTaskAttribute;
  readonly lun: number;
  readonly initiatorTaskTag: number;
  readonly expectedDataTransferLength: number;
  readonly cmdSN: number;
  readonly expStatSN: number;
  /** 16 CDB bytes, extended by an Extended CDB AHS (§11.3.5). */
  readonly cdb: Buffer;
  /** Immediate data. */
  readonly data: Buffer;
  /** Bidirectional commands: the Expected Bidirectional Read Data Length AHS (§11.2.2.4). */
  readonly expectedBidiReadLength: number | undefined;
}

export interface DataOutPdu {
  readonly kind: 'data-out';
  readonly final: boolean;
  readonly lun: number;
  readonly initiatorTaskTag: number;
  readonly targetTransferTag: number;
  readonly expStatSN: number;
  readonly dataSN: number;
  readonly bufferOffset: number;
  readonly data: Buffer;
}

export interface NopOutPdu {
  readonly kind: 'nop-out';
  readonly immediate: boolean;
  readonly lun: number;
  readonly initiatorTaskTag: number;
  readonly targetTransferTag: number;
  readonly cmdSN: number;
  readonly expStatSN: number;
  readonly data: Buffer;
}

export interface TaskManagementPdu {
  readonly kind: 'task-management';
  readonly immediate: boolean;
  readonly functionCode: number;
  readonly lun: number;
  readonly initiatorTaskTag: number;
  readonly referencedTaskTag: number;
  readonly cmdSN: number;
  readonly expStatSN: number;
  readonly refCmdSN: number;
}

export interface LoginRequestPdu {
  readonly kind: 'login';
  readonly transit: boolean;
  readonly continue: boolean;
  readonly currentStage: number;
  readonly nextStage: number;
  readonly versionMax: number;
  readonly versionMin: number;
  /** 6 bytes as 12 lowercase hex digits. */
  readonly isid: string;
  readonly tsih: number;
  readonly initiatorTaskTag: number;
  readonly cid: number;
  readonly cmdSN: number;
  readonly expStatSN: number;
  readonly data: Buffer;
}

export interface TextRequestPdu {
  readonly kind: 'text';
  readonly immediate: boolean;
  readonly final: boolean;
  readonly continue: boolean;
  readonly initiatorTaskTag: number;
  readonly targetTransferTag: number;
  readonly cmdSN: number;
  readonly expStatSN: number;
  readonly data: Buffer;
}

export interface LogoutRequestPdu {
  readonly kind: 'logout';
  readonly immediate: boolean;
  readonly reasonCode: number;
  readonly initiatorTaskTag: number;
  readonly cid: number;
  readonly cmdSN: number;
  readonly expStatSN: number;
}

export interface SnackRequestPdu {
  readonly kind: 'snack';
}

export interface UnknownPdu {
  readonly kind: 'unknown';
  readonly opcode: number;
}

export type InitiatorPdu =
  | ScsiCommandPdu
  | DataOutPdu
  | NopOutPdu
  | TaskManagementPdu
  | LoginRequestPdu
  | TextRequestPdu
  | LogoutRequestPdu
  | SnackRequestPdu
  | UnknownPdu;

const ATTRIBUTES: readonly ScsiTaskAttribute[] = ['untagged', 'simple', 'ordered', 'head-of-queue', 'aca'];

/** §11.2.2: AHS types. */
const AHS_EXTENDED_CDB = 1;
const AHS_BIDI_READ_LENGTH = 2;

export function decodeInitiatorPdu(pdu: RawPdu): InitiatorPdu | IscsiProtocolError {
  const opcode = opcodeOf(pdu.bhs);
  switch (opcode) {
    case InitiatorOpcode.SCSI_COMMAND:
      return decodeScsiCommand(pdu);
    case InitiatorOpcode.DATA_OUT:
      return decodeDataOut(pdu);
    case InitiatorOpcode.NOP_OUT:
      return decodeNopOut(pdu);
    case InitiatorOpcode.TASK_MANAGEMENT_REQUEST:
      return decodeTaskManagement(pdu);
    case InitiatorOpcode.LOGIN_REQUEST:
      return decodeLoginRequest(pdu);
    case InitiatorOpcode.TEXT_REQUEST:
      return decodeTextRequest(pdu);
    case InitiatorOpcode.LOGOUT_REQUEST:
      return decodeLogoutRequest(pdu);
    case InitiatorOpcode.SNACK_REQUEST:
      return { kind: 'snack' };
    default:
      return { kind: 'unknown', opcode };
  }
}

function lunAt(bhs: Buffer): number {
  return decodeLun(bhs, 8);
}

export function decodeScsiCommand(pdu: RawPdu): ScsiCommandPdu | IscsiProtocolError {
  const { bhs } = pdu;
  const flags = bhs[1] ?? 0;
  const attribute = ATTRIBUTES[flags & 0x07];
  if (attribute === undefined) {
    return new IscsiProtocolError('BAD_FIELD', `SCSI Command ATTR ${flags & 0x07} is reserved`, { field: 'ATTR' });
  }
  const ahs = parseAhs(pdu.ahs);
  if (ahs instanceof IscsiProtocolError) {
    return ahs;
  }
  // A view: the BHS is the command's own (PduReader) and nothing writes to a CDB.
  const cdbBase = bhs.subarray(32, 48);
  const cdb = ahs.extendedCdb === undefined ? cdbBase : Buffer.concat([cdbBase, ahs.extendedCdb]);
  return {
    kind: 'scsi-command',
    immediate: isImmediate(bhs),
    final: isFinal(bhs),
    read: (flags & 0x40) !== 0,
    write: (flags & 0x20) !== 0,
    attribute,
    lun: lunAt(bhs),
    initiatorTaskTag: bhs.readUInt32BE(16),
    expectedDataTransferLength: bhs.readUInt32BE(20),
    cmdSN: bhs.readUInt32BE(24),
    expStatSN: bhs.readUInt32BE(28),
    cdb,
    data: pdu.data,
    expectedBidiReadLength: ahs.bidiReadLength,
  };
}

interface ParsedAhs {
  readonly extendedCdb: Buffer | undefined;
  readonly bidiReadLength: number | undefined;
}

const NO_AHS_FIELDS: ParsedAhs = { extendedCdb: undefined, bidiReadLength: undefined };

/** §11.2.2: each AHS is AHSLength (2), AHSType (1), specific (1), then AHSLength bytes padded to 4. */
function parseAhs(ahs: Buffer): ParsedAhs | IscsiProtocolError {
  if (ahs.length === 0) {
    return NO_AHS_FIELDS;
  }
  let extendedCdb: Buffer | undefined;
  let bidiReadLength: number | undefined;
  let offset = 0;
  while (offset + 4 <= ahs.length) {
    const length = ahs.readUInt16BE(offset);
    const type = ahs[offset + 2] ?? 0;
    const end = offset + 3 + length;
    if (end > ahs.length || length === 0) {
      return new IscsiProtocolError('BAD_FIELD', `AHS of type ${type} overruns TotalAHSLength`, { field: 'AHSLength' });
    }
    if (type === AHS_EXTENDED_CDB) {
      // AHSLength counts the reserved byte plus the CDB bytes past 16.
      extendedCdb = Buffer.from(ahs.subarray(offset + 4, end));
    } else if (type === AHS_BIDI_READ_LENGTH && length === 5) {
      bidiReadLength = ahs.readUInt32BE(offset + 4);
    }
    offset = end + ((4 - ((3 + length) % 4)) % 4);
  }
  return { extendedCdb, bidiReadLength };
}

export function decodeDataOut(pdu: RawPdu): DataOutPdu {
  const { bhs } = pdu;
  return {
    kind: 'data-out',
    final: isFinal(bhs),
    lun: lunAt(bhs),
    initiatorTaskTag: bhs.readUInt32BE(16),
    targetTransferTag: bhs.readUInt32BE(20),
    expStatSN: bhs.readUInt32BE(28),
    dataSN: bhs.readUInt32BE(36),
    bufferOffset: bhs.readUInt32BE(40),
    data: pdu.data,
  };
}

export function decodeNopOut(pdu: RawPdu): NopOutPdu | IscsiProtocolError {
  const { bhs } = pdu;
  const initiatorTaskTag = bhs.readUInt32BE(16);
  const targetTransferTag = bhs.readUInt32BE(20);
  // §11.18.4 / §11.18: a NOP-Out with no task tag and no transfer tag must be immediate.
  if (initiatorTaskTag === RESERVED_TAG && !isImmediate(bhs)) {
    return new IscsiProtocolError('BAD_FIELD', 'NOP-Out with ITT 0xffffffff must have the I bit set', { field: 'I' });
  }
  return {
    kind: 'nop-out',
    immediate: isImmediate(bhs),
    lun: lunAt(bhs),
    initiatorTaskTag,
    targetTransferTag,
    cmdSN: bhs.readUInt32BE(24),
    expStatSN: bhs.readUInt32BE(28),
    data: pdu.data,
  };
}

export function decodeTaskManagement(pdu: RawPdu): TaskManagementPdu {
  const { bhs } = pdu;
  return {
    kind: 'task-management',
    immediate: isImmediate(bhs),
    functionCode: (bhs[1] ?? 0) & 0x7f,
    lun: lunAt(bhs),
    initiatorTaskTag: bhs.readUInt32BE(16),
    referencedTaskTag: bhs.readUInt32BE(20),
    cmdSN: bhs.readUInt32BE(24),
    expStatSN: bhs.readUInt32BE(28),
    refCmdSN: bhs.readUInt32BE(32),
  };
}

export function decodeLoginRequest(pdu: RawPdu): LoginRequestPdu | IscsiProtocolError {
  const { bhs } = pdu;
  const flags = bhs[1] ?? 0;
  const transit = (flags & 0x80) !== 0;
  const continueFlag = (flags & 0x40) !== 0;
  if (transit && continueFlag) {
    // §11.12.2: T and C must not both be set.
    return new IscsiProtocolError('BAD_FIELD', 'Login Request has both T and C set', { field: 'T/C' });
  }
  return {
    kind: 'login',
    transit,
    continue: continueFlag,
    currentStage: (flags >> 2) & 0x03,
    nextStage: flags & 0x03,
    versionMax: bhs[2] ?? 0,
    versionMin: bhs[3] ?? 0,
    isid: bhs.subarray(8, 14).toString('hex'),
    tsih: bhs.readUInt16BE(14),
    initiatorTaskTag: bhs.readUInt32BE(16),
    cid: bhs.readUInt16BE(20),
    cmdSN: bhs.readUInt32BE(24),
    expStatSN: bhs.readUInt32BE(28),
    data: pdu.data,
  };
}

export function decodeTextRequest(pdu: RawPdu): TextRequestPdu | IscsiProtocolError {
  const { bhs } = pdu;
  const flags = bhs[1] ?? 0;
  const final = (flags & 0x80) !== 0;
  const continueFlag = (flags & 0x40) !== 0;
  if (final && continueFlag) {
    return new IscsiProtocolError('BAD_FIELD', 'Text Request has both F and C set', { field: 'F/C' });
  }
  return {
    kind: 'text',
    immediate: isImmediate(bhs),
    final,
    continue: continueFlag,
    initiatorTaskTag: bhs.readUInt32BE(16),
    targetTransferTag: bhs.readUInt32BE(20),
    cmdSN: bhs.readUInt32BE(24),
    expStatSN: bhs.readUInt32BE(28),
    data: pdu.data,
  };
}

export function decodeLogoutRequest(pdu: RawPdu): LogoutRequestPdu {
  const { bhs } = pdu;
  return {
    kind: 'logout',
    immediate: isImmediate(bhs),
    reasonCode: (bhs[1] ?? 0) & 0x7f,
    initiatorTaskTag: bhs.readUInt32BE(16),
    cid: bhs.readUInt16BE(20),
    cmdSN: bhs.readUInt32BE(24),
    expStatSN: bhs.readUInt32BE(28),
  };
}
