import { PlinthError } from '../../../common/plinth-error.js';
import { MAX_REGISTRATIONS, nexusKeyOf, ReservationType } from './scsi-persistent-reservations.js';

/**
 * A logical unit's persistent reservations (SPC-4 §5.9) as plain JSON: what
 * the cluster state keeps per volume so registrations and the reservation
 * survive a failover to another node (docs/iscsi.md "Persistent
 * reservations"). Reservation keys are 16 lowercase hex digits because JSON
 * has no 64-bit integers. Pure: validation throws INVALID_ARGUMENT.
 */

/** An I_T nexus's initiator port (scsi-task.ts InitiatorPort), as stored. */
export interface NexusImage {
  readonly initiatorName: string;
  /** 12 lowercase hex digits. */
  readonly isid: string;
  readonly targetPortalGroupTag: number;
}

export interface RegistrationImage extends NexusImage {
  /** The reservation key: 16 lowercase hex digits, never all zero (SPC-4 §5.9.7: key 0 unregisters). */
  readonly key: string;
}

export interface ReservationHolderImage {
  /** The holding nexus; null for the all-registrants types, which every registrant holds (SPC-4 §5.9.10). */
  readonly holder: NexusImage | null;
  readonly type: number;
}

export interface ReservationImage {
  /** PRgeneration (SPC-4 §6.15.2): a 32-bit counter. */
  readonly generation: number;
  /** The last APTPL bit a REGISTER carried (SPC-4 §5.9.4), reported as PTPL_A. */
  readonly aptpl: boolean;
  /** In registration order: READ KEYS lists them so. */
  readonly registrations: readonly RegistrationImage[];
  readonly reservation: ReservationHolderImage | null;
}

/**
 * RFC 7143 §4.2.7.1 caps iSCSI names at 223 bytes, but the login accepts any
 * text value (§6.1: up to 255 bytes); a nexus that logged in must be storable.
 */
export const MAX_INITIATOR_NAME_BYTES = 255;

const ISID_PATTERN = /^[0-9a-f]{12}$/;
const KEY_PATTERN = /^[0-9a-f]{16}$/;
const VALID_TYPES = new Set<number>(Object.values(ReservationType));
const ALL_REGISTRANTS_TYPES = new Set<number>([
  ReservationType.WRITE_EXCLUSIVE_ALL_REGISTRANTS,
  ReservationType.EXCLUSIVE_ACCESS_ALL_REGISTRANTS,
]);

/** Validate an image read from the cluster state or a command; returns it typed. */
export function decodeReservationImage(value: unknown): ReservationImage {
  const record = requireObject(value, 'reservation image', ['generation', 'aptpl', 'registrations', 'reservation']);
  const generation = record['generation'];
  if (typeof generation !== 'number' || !Number.isInteger(generation) || generation < 0 || generation > 0xffffffff) {
    throw invalid(`generation must be a 32-bit unsigned integer, got ${JSON.stringify(generation)}`);
  }
  if (typeof record['aptpl'] !== 'boolean') throw invalid('aptpl must be a boolean');
  const registrations = record['registrations'];
  if (!Array.isArray(registrations)) throw invalid('registrations must be an array');
  if (registrations.length > MAX_REGISTRATIONS) {
    throw invalid(`at most ${MAX_REGISTRATIONS} registrations, got ${registrations.length}`);
  }
  const seen = new Set<string>();
  registrations.forEach((entry: unknown, index) => {
    const registration = decodeRegistration(entry, index);
    const nexusKey = nexusKeyOf(registration);
    if (seen.has(nexusKey)) throw invalid(`registration ${index}: nexus ${nexusKey} is registered twice`);
    seen.add(nexusKey);
  });
  decodeReservation(record['reservation'], seen);
  // Every field was just checked.
  return value as ReservationImage;
}

function decodeRegistration(value: unknown, index: number): RegistrationImage {
  const where = `registration ${index}`;
  const record = requireObject(value, where, ['initiatorName', 'isid', 'targetPortalGroupTag', 'key']);
  decodeNexus(record, where);
  const key = record['key'];
  if (typeof key !== 'string' || !KEY_PATTERN.test(key) || /^0+$/.test(key)) {
    throw invalid(`${where}: key must be 16 lowercase hex digits and not zero`);
  }
  return value as RegistrationImage;
}

function decodeNexus(record: Readonly<Record<string, unknown>>, where: string): void {
  const name = record['initiatorName'];
  if (typeof name !== 'string' || name.length === 0 || Buffer.byteLength(name, 'utf8') > MAX_INITIATOR_NAME_BYTES) {
    throw invalid(`${where}: initiatorName must be 1 to ${MAX_INITIATOR_NAME_BYTES} bytes`);
  }
  const isid = record['isid'];
  if (typeof isid !== 'string' || !ISID_PATTERN.test(isid)) throw invalid(`${where}: isid must be 12 lowercase hex digits`);
  const tag = record['targetPortalGroupTag'];
  if (typeof tag !== 'number' || !Number.isInteger(tag) || tag < 0 || tag > 0xffff) {
    throw invalid(`${where}: targetPortalGroupTag must be 0 to 65535`);
  }
}

/** A reservation needs a registered holder, except the all-registrants types, which have none (SPC-4 §5.9.10). */
function decodeReservation(value: unknown, registered: ReadonlySet<string>): void {
  if (value === null) return;
  const record = requireObject(value, 'reservation', ['holder', 'type']);
  const type = record['type'];
  if (typeof type !== 'number' || !VALID_TYPES.has(type)) throw invalid(`reservation: unknown type ${JSON.stringify(type)}`);
  const holder = record['holder'];
  if (ALL_REGISTRANTS_TYPES.has(type)) {
    if (holder !== null) throw invalid('reservation: an all-registrants reservation has no single holder');
    if (registered.size === 0) throw invalid('reservation: an all-registrants reservation needs a registrant');
    return;
  }
  const holderRecord = requireObject(holder, 'reservation holder', ['initiatorName', 'isid', 'targetPortalGroupTag']);
  decodeNexus(holderRecord, 'reservation holder');
  const holderKey = nexusKeyOf(holderRecord as unknown as NexusImage);
  if (!registered.has(holderKey)) throw invalid(`reservation: holder ${holderKey} is not registered`);
}

function requireObject(value: unknown, where: string, fields: readonly string[]): Readonly<Record<string, unknown>> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid(`${where} must be an object`);
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!fields.includes(key)) throw invalid(`${where}: unexpected field "${key}"`);
  }
  for (const field of fields) {
    if (!Object.hasOwn(record, field)) throw invalid(`${where}: missing field "${field}"`);
  }
  return record;
}

function invalid(message: string): PlinthError {
  return new PlinthError('INVALID_ARGUMENT', `persistent reservations: ${message}`);
}
