import type { LogicalUnitGeometry } from './scsi-geometry.js';
import { defaultModeState, type ModeState } from './scsi-mode-pages.js';
import { PersistentReservations } from './scsi-persistent-reservations.js';
import { RangeLock } from '../../volume/range-lock.js';
import type { ReservationStore } from './scsi-reservation-store.js';
import { type AscCode, type SenseInfo, SenseKey } from './scsi-sense.js';

/**
 * One volume's SCSI state on this node, shared by every session on it:
 * persistent reservations, the SPC-2 RESERVE(6) holder, pending unit
 * attentions per I_T nexus, mode parameters, PREVENT ALLOW holders and the
 * range lock that makes COMPARE AND WRITE atomic.
 */

/** A bound on queued unit attentions per nexus (SAM-5 §5.14: the oldest ones may be dropped). */
const MAX_UNIT_ATTENTIONS_PER_NEXUS = 8;

/** A bound on PERSISTENT RESERVE OUT commands of one volume waiting for their turn on this node. */
export const MAX_PENDING_RESERVATION_CHANGES = 64;

export interface LogicalUnitStateOptions {
  /** The committed reservations to start from (loadReservations); default: none. */
  readonly reservations?: PersistentReservations;
  /** Absent: reservations live in this node's memory only (unit tests). */
  readonly reservationStore?: ReservationStore;
}

export class LogicalUnitState {
  /**
   * The committed persistent reservations. Replaced, never edited in place:
   * a PERSISTENT RESERVE OUT works on a clone and swaps it in once the
   * store committed it (scsi-logical-unit-session.ts).
   */
  reservations: PersistentReservations;
  readonly reservationStore: ReservationStore | undefined;
  private reservationChanges: Promise<unknown> = Promise.resolve();
  private pendingReservationChanges = 0;
  readonly mode: ModeState = defaultModeState();
  readonly rangeLock = new RangeLock();
  /** Nexus holding an SPC-2 RESERVE(6)/(10) reservation (SPC-2 §5.5.1). */
  legacyReservationHolder: string | undefined;
  /** Nexuses that sent PREVENT ALLOW MEDIUM REMOVAL with PREVENT = 1 (SPC-4 §6.13). */
  readonly preventingNexuses = new Set<string>();
  /** Nexuses with an open session, for unit attentions on resets. */
  readonly connectedNexuses = new Map<string, number>();
  private readonly unitAttentions = new Map<string, SenseInfo[]>();
  geometry: LogicalUnitGeometry;

  constructor(geometry: LogicalUnitGeometry, options: LogicalUnitStateOptions = {}) {
    this.geometry = geometry;
    this.reservations = options.reservations ?? new PersistentReservations();
    this.reservationStore = options.reservationStore;
  }

  /** True while a reservation change runs or waits: the state must not be reloaded under it. */
  get changingReservations(): boolean {
    return this.pendingReservationChanges > 0;
  }

  /**
   * Run reservation changes of this volume one at a time on this node, so
   * each one computes its new state from the previous committed one.
   * undefined when MAX_PENDING_RESERVATION_CHANGES already wait (the caller
   * answers TASK SET FULL, SAM-5 §5.3).
   */
  serialiseReservationChange<T>(change: () => Promise<T>): Promise<T> | undefined {
    if (this.pendingReservationChanges >= MAX_PENDING_RESERVATION_CHANGES) {
      return undefined;
    }
    this.pendingReservationChanges += 1;
    const run = this.reservationChanges.then(change).finally(() => {
      this.pendingReservationChanges -= 1;
    });
    // The chain only orders the changes; each caller gets its own outcome from `run`.
    this.reservationChanges = run.catch(() => undefined);
    return run;
  }

  addNexus(nexusKey: string): void {
    this.connectedNexuses.set(nexusKey, (this.connectedNexuses.get(nexusKey) ?? 0) + 1);
  }

  /** Returns true when this was the nexus's last session (I_T nexus loss). */
  removeNexus(nexusKey: string): boolean {
    const count = (this.connectedNexuses.get(nexusKey) ?? 0) - 1;
    if (count > 0) {
      this.connectedNexuses.set(nexusKey, count);
      return false;
    }
    this.connectedNexuses.delete(nexusKey);
    this.unitAttentions.delete(nexusKey);
    return true;
  }

  queueUnitAttention(nexusKey: string, asc: AscCode): void {
    const queue = this.unitAttentions.get(nexusKey) ?? [];
    if (queue.some((sense) => sense.asc === asc)) {
      return;
    }
    if (queue.length >= MAX_UNIT_ATTENTIONS_PER_NEXUS) {
      queue.shift();
    }
    queue.push({ senseKey: SenseKey.UNIT_ATTENTION, asc });
    this.unitAttentions.set(nexusKey, queue);
  }

  /** Unit attention for every connected nexus except `exceptNexusKey`. */
  queueUnitAttentionForOthers(exceptNexusKey: string | undefined, asc: AscCode): void {
    for (const nexusKey of this.connectedNexuses.keys()) {
      if (nexusKey !== exceptNexusKey) {
        this.queueUnitAttention(nexusKey, asc);
      }
    }
  }

  takeUnitAttention(nexusKey: string): SenseInfo | undefined {
    const queue = this.unitAttentions.get(nexusKey);
    const sense = queue?.shift();
    if (queue !== undefined && queue.length === 0) {
      this.unitAttentions.delete(nexusKey);
    }
    return sense;
  }

  /**
   * LOGICAL UNIT RESET and target resets (SAM-5 §6.3.2, §7.9; SPC-4
   * §5.9.10): SPC-2 reservations and PREVENT go, PRs stay, and every I_T
   * nexus, the one that asked included, gets the unit attention (libiscsi's
   * MultipathIO.Reset expects it on every path).
   */
  reset(asc: AscCode): void {
    this.legacyReservationHolder = undefined;
    this.preventingNexuses.clear();
    this.queueUnitAttentionForOthers(undefined, asc);
  }

  /** I_T nexus loss (SAM-5 §6.3.4): its SPC-2 reservation and PREVENT go; PRs stay. */
  nexusLost(nexusKey: string): void {
    if (this.legacyReservationHolder === nexusKey) {
      this.legacyReservationHolder = undefined;
    }
    this.preventingNexuses.delete(nexusKey);
  }
}
