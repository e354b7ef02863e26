import { PlinthError } from '../../common/plinth-error.js';

/**
 * Admission for the volume controller's I/O: a bound on in-flight requests
 * and on requests waiting for a slot (overflow is BUSY, never unbounded
 * growth), pause/resume with drain (snapshots, handover), and the terminal
 * states in which the volume stops serving:
 *   - fenced: a replica saw a newer generation, so a newer owner exists
 *     (ARCHITECTURE invariant 3); every I/O fails with FENCED.
 *   - suspended: a replica failure could not be committed through Raft
 *     (invariant 2), so no write may be acknowledged any more; IO_ERROR.
 *   - closed: SHUTTING_DOWN.
 * The first terminal error wins: a fenced volume that is closed still says FENCED.
 */

export type GateState = 'open' | 'paused' | 'fenced' | 'suspended' | 'closed';

export interface IoGateOptions {
  readonly maxInFlight: number;
  readonly maxWaiting: number;
}

interface Waiter {
  readonly admit: () => void;
  readonly refuse: (error: PlinthError) => void;
}

export class IoGate {
  private readonly options: IoGateOptions;
  private stateValue: GateState = 'open';
  /** fenced or suspended: also fails I/O that is already in flight when it re-checks. */
  private terminalError: PlinthError | undefined;
  /** closed: refuses new I/O, but lets in-flight I/O finish normally (close drains). */
  private closedError: PlinthError | undefined;
  private inFlightCount = 0;
  /** pause() calls not yet matched by resume(): I/O reopens only when the last one ends. */
  private pauseHolds = 0;
  private readonly waiters: Waiter[] = [];
  private drainWaiters: (() => void)[] = [];

  constructor(options: IoGateOptions) {
    if (options.maxInFlight < 1 || options.maxWaiting < 0) {
      throw new PlinthError('INVALID_ARGUMENT', 'io gate needs maxInFlight >= 1 and maxWaiting >= 0', { ...options });
    }
    this.options = options;
  }

  get state(): GateState {
    return this.stateValue;
  }

  get inFlight(): number {
    return this.inFlightCount;
  }

  get waiting(): number {
    return this.waiters.length;
  }

  /**
   * enter() without a promise when a slot is free now: true means admitted
   * (call leave() once afterwards); false changes nothing, call enter().
   */
  tryEnter(): boolean {
    if (this.terminalError !== undefined || this.closedError !== undefined) return false;
    if (this.stateValue !== 'open' || this.inFlightCount >= this.options.maxInFlight || this.waiters.length > 0) return false;
    this.inFlightCount += 1;
    return true;
  }

  /** Resolves once the caller may start; the caller must call leave() exactly once afterwards. */
  enter(): Promise<void> {
    const refusal = this.terminalError ?? this.closedError;
    if (refusal !== undefined) return Promise.reject(refusal);
    if (this.stateValue === 'open' && this.inFlightCount < this.options.maxInFlight && this.waiters.length === 0) {
      this.inFlightCount += 1;
      return Promise.resolve();
    }
    if (this.waiters.length >= this.options.maxWaiting) {
      return Promise.reject(
        new PlinthError('BUSY', `volume has ${this.inFlightCount} requests in flight and ${this.waiters.length} waiting`, {
          maxInFlight: this.options.maxInFlight,
          maxWaiting: this.options.maxWaiting,
        }),
      );
    }
    return new Promise<void>((resolve, reject) => {
      this.waiters.push({ admit: resolve, refuse: reject });
    });
  }

  leave(): void {
    if (this.inFlightCount <= 0) {
      throw new PlinthError('INTERNAL', 'io gate left more often than entered');
    }
    this.inFlightCount -= 1;
    this.admitWaiters();
    if (this.inFlightCount === 0) {
      const drained = this.drainWaiters;
      this.drainWaiters = [];
      for (const notify of drained) notify();
    }
  }

  /**
   * Throws once the volume is fenced or suspended. In-flight I/O calls it
   * before acknowledging, so nothing is acknowledged after either happened.
   */
  assertNotStopped(): void {
    if (this.terminalError !== undefined) throw this.terminalError;
  }

  /**
   * Stop admitting new I/O and wait until everything in flight has finished.
   * Pauses nest (a snapshot of one volume inside a group snapshot): each
   * call, resolved or rejected, must be ended by exactly one resume(), and
   * I/O reopens at the last one.
   */
  async pause(): Promise<void> {
    // Counted before the refusal check, so the caller's resume() for a refused pause stays matched.
    this.pauseHolds += 1;
    const refusal = this.terminalError ?? this.closedError;
    if (refusal !== undefined) throw refusal;
    this.stateValue = 'paused';
    await this.drain();
  }

  resume(): void {
    if (this.pauseHolds === 0) return;
    this.pauseHolds -= 1;
    if (this.pauseHolds > 0 || this.stateValue !== 'paused') return;
    this.stateValue = 'open';
    this.admitWaiters();
  }

  /** Enter a terminal state: waiting requests fail now, in-flight ones fail when they re-check. */
  stop(state: 'fenced' | 'suspended', error: PlinthError): void {
    if (this.terminalError === undefined) {
      this.terminalError = error;
      this.stateValue = state;
    }
    this.refuseWaiters(this.terminalError);
  }

  /** Refuse new I/O with `error`; in-flight I/O finishes (wait with drain()). */
  close(error: PlinthError): void {
    this.closedError ??= error;
    if (this.terminalError === undefined) this.stateValue = 'closed';
    this.refuseWaiters(this.terminalError ?? this.closedError);
  }

  private refuseWaiters(error: PlinthError): void {
    const refused = this.waiters.splice(0, this.waiters.length);
    for (const waiter of refused) waiter.refuse(error);
  }

  /** Resolves when nothing is in flight. */
  drain(): Promise<void> {
    if (this.inFlightCount === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private admitWaiters(): void {
    while (this.stateValue === 'open' && this.inFlightCount < this.options.maxInFlight) {
      const next = this.waiters.shift();
      if (next === undefined) return;
      this.inFlightCount += 1;
      next.admit();
    }
  }
}
