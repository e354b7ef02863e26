import type { ReservationImage } from './scsi-reservation-image.js';
import type { InitiatorPort } from './scsi-task.js';
import { Asc, illegalRequest, invalidFieldInCdb, invalidFieldInParameterList, type AscCode } from './scsi-sense.js';

/**
 * Persistent reservations (SPC-4 §5.9): one logical unit's registrations
 * and reservation, as a pure state machine. PERSISTENT RESERVE OUT returns
 * an outcome (done / conflict) plus the unit attentions it causes for other
 * nexuses; CHECK CONDITIONs are thrown. The owner node keeps it in memory
 * and commits every change to the cluster state as a ReservationImage
 * before answering (scsi-reservation-commit.ts), so registrations and the
 * reservation survive failover and power loss: APTPL is accepted and
 * REPORT CAPABILITIES says PTPL_C = 1 (SPC-4 §5.9.4).
 */

export const ReservationType = {
  WRITE_EXCLUSIVE: 1,
  EXCLUSIVE_ACCESS: 3,
  WRITE_EXCLUSIVE_REGISTRANTS_ONLY: 5,
  EXCLUSIVE_ACCESS_REGISTRANTS_ONLY: 6,
  WRITE_EXCLUSIVE_ALL_REGISTRANTS: 7,
  EXCLUSIVE_ACCESS_ALL_REGISTRANTS: 8,
} as const;

const VALID_TYPES = new Set<number>(Object.values(ReservationType));

export const ProutAction = {
  REGISTER: 0,
  RESERVE: 1,
  RELEASE: 2,
  CLEAR: 3,
  PREEMPT: 4,
  PREEMPT_AND_ABORT: 5,
  REGISTER_AND_IGNORE_EXISTING_KEY: 6,
} as const;

export const PrinAction = { READ_KEYS: 0, READ_RESERVATION: 1, REPORT_CAPABILITIES: 2, READ_FULL_STATUS: 3 } as const;

/** A bound on registrations: every I_T nexus may register once. */
export const MAX_REGISTRATIONS = 256;

/** SPC-4 §6.16.1: the basic PERSISTENT RESERVE OUT parameter list is 24 bytes. */
const PROUT_PARAMETER_BYTES = 24;

export function nexusKeyOf(nexus: InitiatorPort): string {
  return `${nexus.initiatorName},i,0x${nexus.isid},${nexus.targetPortalGroupTag}`;
}

interface Registration {
  readonly nexus: InitiatorPort;
  key: bigint;
}

interface Reservation {
  /** The holding nexus; undefined for the all-registrants types (every registrant holds it). */
  holder: string | undefined;
  type: number;
}

export interface UnitAttentionNotice {
  readonly nexusKey: string;
  readonly asc: AscCode;
}

export type ProutOutcome = { readonly conflict: true } | { readonly conflict: false; readonly notices: UnitAttentionNotice[] };

/** How a command touches the medium, for the conflict table (SPC-4 §5.9.1 table 52). */
export type AccessKind = 'read' | 'write' | 'allowed';

function isAllRegistrants(type: number): boolean {
  return type === ReservationType.WRITE_EXCLUSIVE_ALL_REGISTRANTS || type === ReservationType.EXCLUSIVE_ACCESS_ALL_REGISTRANTS;
}

function isRegistrantsOnly(type: number): boolean {
  return (
    type === ReservationType.WRITE_EXCLUSIVE_REGISTRANTS_ONLY || type === ReservationType.EXCLUSIVE_ACCESS_REGISTRANTS_ONLY
  );
}

function isExclusiveAccess(type: number): boolean {
  return (
    type === ReservationType.EXCLUSIVE_ACCESS ||
    type === ReservationType.EXCLUSIVE_ACCESS_REGISTRANTS_ONLY ||
    type === ReservationType.EXCLUSIVE_ACCESS_ALL_REGISTRANTS
  );
}

const CONFLICT: ProutOutcome = { conflict: true };

export class PersistentReservations {
  private generation = 0;
  /** The last APTPL bit of a REGISTER (SPC-4 §5.9.4); reported as PTPL_A. */
  private aptpl = false;
  private readonly registrations = new Map<string, Registration>();
  private reservation: Reservation | undefined;

  /** The state as stored in the cluster state (scsi-reservation-image.ts). */
  toImage(): ReservationImage {
    const reservation = this.reservation;
    const holder = reservation?.holder === undefined ? undefined : this.registrations.get(reservation.holder);
    return {
      generation: this.generation,
      aptpl: this.aptpl,
      registrations: [...this.registrations.values()].map((entry) => ({ ...nexusFields(entry.nexus), key: reservationKeyHex(entry.key) })),
      reservation: reservation === undefined ? null : { holder: holder === undefined ? null : nexusFields(holder.nexus), type: reservation.type },
    };
  }

  /** Rebuild from a validated image (decodeReservationImage). */
  static fromImage(image: ReservationImage): PersistentReservations {
    const state = new PersistentReservations();
    state.generation = image.generation;
    state.aptpl = image.aptpl;
    for (const registration of image.registrations) {
      const nexus = nexusFields(registration);
      state.registrations.set(nexusKeyOf(nexus), { nexus, key: BigInt(`0x${registration.key}`) });
    }
    const reservation = image.reservation;
    if (reservation !== null) {
      state.reservation = { holder: reservation.holder === null ? undefined : nexusKeyOf(reservation.holder), type: reservation.type };
    }
    return state;
  }

  /** An independent copy: PERSISTENT RESERVE OUT runs on it and it replaces this one only once committed. */
  clone(): PersistentReservations {
    return PersistentReservations.fromImage(this.toImage());
  }

  hasRegistrations(): boolean {
    return this.registrations.size > 0;
  }

  /** SPC-4 §5.9.1 table 52: may this nexus run a command of this kind now? */
  allows(nexusKey: string, access: AccessKind): boolean {
    const reservation = this.reservation;
    if (reservation === undefined || access === 'allowed' || this.holds(nexusKey)) {
      return true;
    }
    const registered = this.registrations.has(nexusKey);
    if (isAllRegistrants(reservation.type) || isRegistrantsOnly(reservation.type)) {
      if (registered) {
        return true;
      }
    }
    return access === 'read' && !isExclusiveAccess(reservation.type);
  }

  private holds(nexusKey: string): boolean {
    const reservation = this.reservation;
    if (reservation === undefined) {
      return false;
    }
    return isAllRegistrants(reservation.type) ? this.registrations.has(nexusKey) : reservation.holder === nexusKey;
  }

  /** Run one PERSISTENT RESERVE OUT (SPC-4 §6.16). */
  reserveOut(nexus: InitiatorPort, cdb: Buffer, parameters: Buffer): ProutOutcome {
    const action = (cdb[1] ?? 0) & 0x1f;
    const scope = (cdb[2] ?? 0) >> 4;
    const type = (cdb[2] ?? 0) & 0x0f;
    const parameterLength = cdb.readUInt32BE(5);
    if (action > ProutAction.REGISTER_AND_IGNORE_EXISTING_KEY) {
      throw invalidFieldInCdb(1, 0);
    }
    if (parameterLength !== PROUT_PARAMETER_BYTES || parameters.length < PROUT_PARAMETER_BYTES) {
      throw illegalRequest(Asc.PARAMETER_LIST_LENGTH_ERROR);
    }
    const key = parameters.readBigUInt64BE(0);
    const serviceActionKey = parameters.readBigUInt64BE(8);
    const flags = parameters[20] ?? 0;
    if ((flags & 0x08) !== 0) {
      throw invalidFieldInParameterList(20, 3); // SPEC_I_PT: not supported (SIP_C = 0)
    }
    if ((flags & 0x04) !== 0) {
      throw invalidFieldInParameterList(20, 2); // ALL_TG_PT: not supported (ATP_C = 0)
    }
    const nexusKey = nexusKeyOf(nexus);
    switch (action) {
      case ProutAction.REGISTER:
      case ProutAction.REGISTER_AND_IGNORE_EXISTING_KEY:
        // SPC-4 §6.16.3: APTPL counts for the register actions only; the state is in Raft either way.
        return this.register(nexus, nexusKey, key, serviceActionKey, action === ProutAction.REGISTER, (flags & 0x01) !== 0);
      default:
        break;
    }
    const registration = this.registrations.get(nexusKey);
    if (registration === undefined || registration.key !== key) {
      return CONFLICT;
    }
    switch (action) {
      case ProutAction.RESERVE:
        return this.reserve(nexusKey, scope, type);
      case ProutAction.RELEASE:
        return this.release(nexusKey, scope, type);
      case ProutAction.CLEAR:
        return this.clear(nexusKey);
      default:
        return this.preempt(nexusKey, scope, type, serviceActionKey);
    }
  }

  private register(
    nexus: InitiatorPort,
    nexusKey: string,
    key: bigint,
    serviceActionKey: bigint,
    checkKey: boolean,
    aptpl: boolean,
  ): ProutOutcome {
    const existing = this.registrations.get(nexusKey);
    if (checkKey && (existing === undefined ? key !== 0n : existing.key !== key)) {
      return CONFLICT;
    }
    if (existing === undefined) {
      if (serviceActionKey === 0n) {
        return { conflict: false, notices: [] };
      }
      if (this.registrations.size >= MAX_REGISTRATIONS) {
        throw illegalRequest(Asc.INSUFFICIENT_REGISTRATION_RESOURCES);
      }
      this.registrations.set(nexusKey, { nexus, key: serviceActionKey });
      this.generation = (this.generation + 1) >>> 0;
      this.aptpl = aptpl;
      return { conflict: false, notices: [] };
    }
    this.generation = (this.generation + 1) >>> 0;
    this.aptpl = aptpl;
    if (serviceActionKey !== 0n) {
      existing.key = serviceActionKey;
      return { conflict: false, notices: [] };
    }
    return { conflict: false, notices: this.unregister(nexusKey) };
  }

  /** Remove a registration; the reservation goes with its holder (SPC-4 §5.9.11). */
  private unregister(nexusKey: string): UnitAttentionNotice[] {
    this.registrations.delete(nexusKey);
    const reservation = this.reservation;
    if (reservation === undefined) {
      return [];
    }
    if (isAllRegistrants(reservation.type)) {
      if (this.registrations.size === 0) {
        this.reservation = undefined;
      }
      return [];
    }
    if (reservation.holder !== nexusKey) {
      return [];
    }
    this.reservation = undefined;
    return isRegistrantsOnly(reservation.type) ? this.noticeOthers(nexusKey, Asc.RESERVATIONS_RELEASED) : [];
  }

  private reserve(nexusKey: string, scope: number, type: number): ProutOutcome {
    validateScopeAndType(scope, type);
    const reservation = this.reservation;
    if (reservation !== undefined) {
      return this.holds(nexusKey) && reservation.type === type ? { conflict: false, notices: [] } : CONFLICT;
    }
    this.reservation = { holder: isAllRegistrants(type) ? undefined : nexusKey, type };
    return { conflict: false, notices: [] };
  }

  private release(nexusKey: string, scope: number, type: number): ProutOutcome {
    const reservation = this.reservation;
    if (reservation === undefined || !this.holds(nexusKey)) {
      return { conflict: false, notices: [] };
    }
    validateScopeAndType(scope, type);
    if (reservation.type !== type) {
      throw illegalRequest(Asc.INVALID_RELEASE_OF_PERSISTENT_RESERVATION);
    }
    this.reservation = undefined;
    const notifies = type !== ReservationType.WRITE_EXCLUSIVE && type !== ReservationType.EXCLUSIVE_ACCESS;
    return { conflict: false, notices: notifies ? this.noticeOthers(nexusKey, Asc.RESERVATIONS_RELEASED) : [] };
  }

  private clear(nexusKey: string): ProutOutcome {
    const notices = this.noticeOthers(nexusKey, Asc.RESERVATIONS_PREEMPTED);
    this.registrations.clear();
    this.reservation = undefined;
    this.generation = (this.generation + 1) >>> 0;
    return { conflict: false, notices };
  }

  /** PREEMPT and PREEMPT AND ABORT (SPC-4 §5.9.11.4). */
  private preempt(nexusKey: string, scope: number, type: number, serviceActionKey: bigint): ProutOutcome {
    const reservation = this.reservation;
    if (reservation !== undefined && isAllRegistrants(reservation.type) && serviceActionKey === 0n) {
      validateScopeAndType(scope, type);
      const notices = this.removeRegistrations((entryKey) => entryKey !== nexusKey);
      this.reservation = { holder: isAllRegistrants(type) ? undefined : nexusKey, type };
      this.generation = (this.generation + 1) >>> 0;
      return { conflict: false, notices };
    }
    const holderKey = reservation?.holder === undefined ? undefined : this.registrations.get(reservation.holder)?.key;
    if (reservation !== undefined && holderKey !== undefined && holderKey === serviceActionKey) {
      validateScopeAndType(scope, type);
      const notices = this.removeRegistrations(
        (entryKey, entry) => entryKey !== nexusKey && entry.key === serviceActionKey,
      );
      this.reservation = { holder: isAllRegistrants(type) ? undefined : nexusKey, type };
      this.generation = (this.generation + 1) >>> 0;
      return { conflict: false, notices };
    }
    if (serviceActionKey === 0n) {
      throw invalidFieldInParameterList(8);
    }
    const notices = this.removeRegistrations((_entryKey, entry) => entry.key === serviceActionKey);
    if (notices.length === 0) {
      return CONFLICT;
    }
    this.generation = (this.generation + 1) >>> 0;
    return { conflict: false, notices };
  }

  private removeRegistrations(match: (nexusKey: string, entry: Registration) => boolean): UnitAttentionNotice[] {
    const notices: UnitAttentionNotice[] = [];
    for (const [entryKey, entry] of [...this.registrations]) {
      if (match(entryKey, entry)) {
        this.registrations.delete(entryKey);
        notices.push({ nexusKey: entryKey, asc: Asc.REGISTRATIONS_PREEMPTED });
      }
    }
    if (this.reservation?.holder !== undefined && !this.registrations.has(this.reservation.holder)) {
      this.reservation = undefined;
    }
    return notices;
  }

  private noticeOthers(nexusKey: string, asc: AscCode): UnitAttentionNotice[] {
    return [...this.registrations.keys()].filter((key) => key !== nexusKey).map((key) => ({ nexusKey: key, asc }));
  }

  /** PERSISTENT RESERVE IN (SPC-4 §6.15): the full answer before the allocation length cut. */
  reserveIn(cdb: Buffer): Buffer {
    const action = (cdb[1] ?? 0) & 0x1f;
    switch (action) {
      case PrinAction.READ_KEYS:
        return this.readKeys();
      case PrinAction.READ_RESERVATION:
        return this.readReservation();
      case PrinAction.REPORT_CAPABILITIES:
        return reportCapabilities(this.aptpl);
      case PrinAction.READ_FULL_STATUS:
        return this.readFullStatus();
      default:
        throw invalidFieldInCdb(1, 0);
    }
  }

  private readKeys(): Buffer {
    const keys = [...this.registrations.values()];
    const out = Buffer.alloc(8 + keys.length * 8);
    out.writeUInt32BE(this.generation, 0);
    out.writeUInt32BE(keys.length * 8, 4);
    keys.forEach((entry, index) => out.writeBigUInt64BE(entry.key, 8 + index * 8));
    return out;
  }

  private readReservation(): Buffer {
    const reservation = this.reservation;
    if (reservation === undefined) {
      const out = Buffer.alloc(8);
      out.writeUInt32BE(this.generation, 0);
      return out;
    }
    const out = Buffer.alloc(24);
    out.writeUInt32BE(this.generation, 0);
    out.writeUInt32BE(16, 4);
    const holderKey = reservation.holder === undefined ? 0n : (this.registrations.get(reservation.holder)?.key ?? 0n);
    out.writeBigUInt64BE(holderKey, 8);
    out[21] = reservation.type & 0x0f;
    return out;
  }

  private readFullStatus(): Buffer {
    const descriptors = [...this.registrations.entries()].map(([entryKey, entry]) => {
      const transportId = iscsiTransportId(entry.nexus);
      const descriptor = Buffer.alloc(24 + transportId.length);
      descriptor.writeBigUInt64BE(entry.key, 0);
      if (this.holds(entryKey)) {
        descriptor[12] = 0x01; // R_HOLDER
        descriptor[13] = this.reservation?.type ?? 0;
      }
      descriptor.writeUInt16BE(1, 18); // RELATIVE TARGET PORT IDENTIFIER
      descriptor.writeUInt32BE(transportId.length, 20);
      transportId.copy(descriptor, 24);
      return descriptor;
    });
    const body = Buffer.concat(descriptors);
    const header = Buffer.alloc(8);
    header.writeUInt32BE(this.generation, 0);
    header.writeUInt32BE(body.length, 4);
    return Buffer.concat([header, body]);
  }
}

function validateScopeAndType(scope: number, type: number): void {
  if (scope !== 0) {
    throw invalidFieldInCdb(2, 4);
  }
  if (!VALID_TYPES.has(type)) {
    throw invalidFieldInCdb(2, 0);
  }
}

/**
 * SPC-4 §6.15.4: no CRH, SIP_C, ATP_C; PTPL_C (the state is in the cluster
 * state, which survives power loss) with PTPL_A the last APTPL; TMV with
 * every type of table 194.
 */
function reportCapabilities(aptpl: boolean): Buffer {
  const out = Buffer.alloc(8);
  out.writeUInt16BE(8, 0);
  out[2] = 0x01; // PTPL_C
  out[3] = 0x80 | (aptpl ? 0x01 : 0); // TMV: the type mask is valid; PTPL_A
  out[4] = 0x80 | 0x40 | 0x20 | 0x08 | 0x02; // WR_EX_AR, EX_AC_RO, WR_EX_RO, EX_AC, WR_EX
  out[5] = 0x01; // EX_AC_AR
  return out;
}

function nexusFields(nexus: InitiatorPort): InitiatorPort {
  return { initiatorName: nexus.initiatorName, isid: nexus.isid, targetPortalGroupTag: nexus.targetPortalGroupTag };
}

function reservationKeyHex(key: bigint): string {
  return key.toString(16).padStart(16, '0');
}

/** iSCSI TransportID, initiator port format (SPC-4 §7.6.4.6): "name,i,0xISID", padded to 4. */
export function iscsiTransportId(nexus: InitiatorPort): Buffer {
  const name = `${nexus.initiatorName},i,0x${nexus.isid}`;
  const nameBytes = Math.ceil((Buffer.byteLength(name, 'utf8') + 1) / 4) * 4;
  const out = Buffer.alloc(4 + nameBytes);
  out[0] = 0x40 | 0x05; // FORMAT CODE 01b, PROTOCOL IDENTIFIER 5 (iSCSI)
  out.writeUInt16BE(nameBytes, 2);
  out.write(name, 4, 'utf8');
  return out;
}
