import type pino from 'pino';
import { isPlinthError, toError } from '../../../common/plinth-error.js';
import { PersistentReservations } from './scsi-persistent-reservations.js';
import { decodeReservationImage, type ReservationImage } from './scsi-reservation-image.js';
import { Asc, ScsiCheckCondition, SenseKey } from './scsi-sense.js';

/**
 * Where a volume's persistent reservations are kept beyond this node's
 * memory (docs/iscsi.md "Persistent reservations"). The daemon implements it
 * on the cluster state (daemon/control/scsi-reservation-store.ts): load reads
 * the applied state, commit proposes a `volume.scsi-reservations` command that
 * only the volume's current owner at its current generation may commit.
 */
export interface ReservationStore {
  /** The committed image of a volume, read synchronously from the applied state; undefined: none yet. */
  load(volumeId: string): ReservationImage | undefined;
  /** Resolves once the image is committed; rejects when refused (FENCED ...) or not committed. */
  commit(volumeId: string, image: ReservationImage): Promise<void>;
}

/** What a LogicalUnitState starts with: the committed image, or nothing (no store: memory only, as in unit tests). */
export function loadReservations(store: ReservationStore | undefined, volumeId: string): PersistentReservations {
  const image = store?.load(volumeId);
  return image === undefined ? new PersistentReservations() : PersistentReservations.fromImage(decodeReservationImage(image));
}

/**
 * A PERSISTENT RESERVE OUT whose new state could not be committed. The
 * command had no effect, so it must not end GOOD; the choice of sense:
 * - FENCED / SHUTTING_DOWN: another node owns the volume now or this one is
 *   stopping. Rethrown, like the data path does (scsi-error-map.ts): the
 *   transport drops the connection and the initiator reconnects to the owner.
 * - anything else (no Raft leader or quorum, a timeout): CHECK CONDITION,
 *   NOT READY, LOGICAL UNIT COMMUNICATION FAILURE (SPC-4 Annex D 08h/00h):
 *   the logical unit cannot reach the state it keeps reservations in. Not
 *   ILLEGAL REQUEST (the request was valid; INSUFFICIENT REGISTRATION
 *   RESOURCES stays for the MAX_REGISTRATIONS bound, SPC-4 §5.9.7) and not
 *   ABORTED COMMAND, which SCSI midlayers resend blindly although the
 *   proposal's fate may be unknown.
 */
export function reservationCommitFailure(error: unknown, logger: pino.Logger, volumeId: string): Error {
  if (isPlinthError(error) && (error.code === 'FENCED' || error.code === 'SHUTTING_DOWN')) {
    logger.info({ err: error, volumeId }, 'persistent reservation change refused: this node no longer serves the volume');
    return error;
  }
  logger.warn({ err: toError(error), volumeId }, 'persistent reservation change not committed to the cluster state');
  return new ScsiCheckCondition({ senseKey: SenseKey.NOT_READY, asc: Asc.LOGICAL_UNIT_COMMUNICATION_FAILURE });
}
