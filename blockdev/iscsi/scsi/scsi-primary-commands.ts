import { Asc, encodeSense, illegalRequest, invalidFieldInCdb, type SenseInfo, SenseKey } from './scsi-sense.js';

/**
 * SPC-4 commands that need no device I/O: REPORT LUNS, REQUEST SENSE,
 * START STOP UNIT and PREVENT ALLOW MEDIUM REMOVAL field checks. Pure.
 */

/** REPORT LUNS (SPC-4 §6.33): LUN 0 only (one target per volume). */
export function reportLuns(cdb: Buffer): Buffer {
  const selectReport = cdb[2] ?? 0;
  if (selectReport > 0x02) {
    throw invalidFieldInCdb(2);
  }
  if (cdb.readUInt32BE(6) < 16) {
    throw invalidFieldInCdb(6);
  }
  const out = Buffer.alloc(16);
  out.writeUInt32BE(8, 0);
  return out;
}

/**
 * REQUEST SENSE (SPC-4 §6.39): the pending unit attention, or NO SENSE.
 * DESC (byte 1 bit 0) asks for descriptor format.
 */
export function requestSenseData(cdb: Buffer, pending: SenseInfo | undefined, descriptorDefault: boolean): Buffer {
  const flags = cdb[1] ?? 0;
  if ((flags & 0xfe) !== 0) {
    throw invalidFieldInCdb(1);
  }
  const sense = pending ?? { senseKey: SenseKey.NO_SENSE, asc: Asc.NO_ADDITIONAL_SENSE };
  return encodeSense(sense, (flags & 0x01) !== 0 || descriptorDefault);
}

export interface StartStopRequest {
  readonly loadEject: boolean;
  readonly start: boolean;
}

/** START STOP UNIT (SBC-3 §5.25): field checks; POWER CONDITION must be 0 (START_VALID) or a known one. */
export function decodeStartStopUnit(cdb: Buffer): StartStopRequest {
  const byte4 = cdb[4] ?? 0;
  const powerCondition = byte4 >> 4;
  if (![0x0, 0x1, 0x2, 0x3, 0x7, 0xa, 0xb].includes(powerCondition)) {
    throw invalidFieldInCdb(4, 7);
  }
  return { loadEject: (byte4 & 0x02) !== 0 && powerCondition === 0, start: (byte4 & 0x01) !== 0 };
}

/** A removable-medium eject while a nexus prevents removal (SBC-3 §5.25). */
export function mediumRemovalPrevented(): Error {
  return illegalRequest(Asc.MEDIUM_REMOVAL_PREVENTED);
}

/** PREVENT ALLOW MEDIUM REMOVAL (SBC-3 §5.12): PREVENT 0 allows, 1 prevents; 2 and 3 are obsolete. */
export function decodePrevent(cdb: Buffer): boolean {
  const prevent = (cdb[4] ?? 0) & 0x03;
  if (prevent > 1) {
    throw invalidFieldInCdb(4, 0);
  }
  return prevent === 1;
}

/** Standard INQUIRY for a LUN that does not exist: peripheral qualifier 3 (SPC-4 §6.6.2). */
export function inquiryForMissingLun(data: Buffer): Buffer {
  const copy = Buffer.from(data);
  copy[0] = 0x7f;
  return copy;
}
