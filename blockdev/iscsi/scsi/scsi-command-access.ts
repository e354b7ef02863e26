import type { AccessKind } from './scsi-persistent-reservations.js';
import { Opcode } from './scsi-opcodes.js';

/**
 * How each command touches the medium, for reservation enforcement:
 * persistent reservations (SPC-4 §5.9.1 table 52, SBC-3 table 13) and
 * SPC-2 RESERVE(6) (SPC-2 §5.5.1: only a few commands pass a reservation
 * held by another nexus).
 */
const ACCESS_BY_OPCODE = new Map<number, AccessKind>([
  [Opcode.TEST_UNIT_READY, 'allowed'],
  [Opcode.REQUEST_SENSE, 'allowed'],
  [Opcode.INQUIRY, 'allowed'],
  [Opcode.REPORT_LUNS, 'allowed'],
  [Opcode.READ_CAPACITY_10, 'allowed'],
  [Opcode.SERVICE_ACTION_IN_16, 'allowed'],
  [Opcode.MAINTENANCE_IN, 'allowed'],
  [Opcode.PERSISTENT_RESERVE_IN, 'allowed'],
  [Opcode.PERSISTENT_RESERVE_OUT, 'allowed'],
  [Opcode.RELEASE_6, 'allowed'],
  [Opcode.RELEASE_10, 'allowed'],
  [Opcode.READ_6, 'read'],
  [Opcode.READ_10, 'read'],
  [Opcode.READ_12, 'read'],
  [Opcode.READ_16, 'read'],
  [Opcode.VERIFY_10, 'read'],
  [Opcode.VERIFY_12, 'read'],
  [Opcode.VERIFY_16, 'read'],
  [Opcode.PRE_FETCH_10, 'read'],
  [Opcode.PRE_FETCH_16, 'read'],
  [Opcode.MODE_SENSE_6, 'read'],
  [Opcode.MODE_SENSE_10, 'read'],
  [Opcode.PREVENT_ALLOW_MEDIUM_REMOVAL, 'read'],
]);

/** Anything not listed (writes, WRITE SAME, UNMAP, MODE SELECT, SYNCHRONIZE CACHE, ...) counts as a write. */
export function accessKindOf(opcode: number): AccessKind {
  return ACCESS_BY_OPCODE.get(opcode) ?? 'write';
}

/** Commands another nexus may run while an SPC-2 reservation is held (SPC-2 §5.5.1 table 8). */
const ALLOWED_UNDER_LEGACY_RESERVATION = new Set<number>([
  Opcode.INQUIRY,
  Opcode.REPORT_LUNS,
  Opcode.REQUEST_SENSE,
  Opcode.RELEASE_6,
  Opcode.RELEASE_10,
  Opcode.MAINTENANCE_IN,
]);

export function allowedUnderLegacyReservation(opcode: number): boolean {
  return ALLOWED_UNDER_LEGACY_RESERVATION.has(opcode);
}

/** SAM-5 §5.14: these neither report nor clear a pending unit attention (REQUEST SENSE reports it as data). */
export function bypassesUnitAttention(opcode: number): boolean {
  return opcode === Opcode.INQUIRY || opcode === Opcode.REPORT_LUNS || opcode === Opcode.REQUEST_SENSE;
}
