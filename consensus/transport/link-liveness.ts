/**
 * Dead-link detection for the one-way Raft links. A link only carries
 * messages from dialer to listener, so a dialer whose peer vanished behind a
 * silent partition (no RST, no FIN) would keep writing into the kernel's
 * buffer while TCP retransmits with exponential backoff: after a partition
 * heals, such a link can stay dead for minutes. So the listener sends an
 * empty frame back (an ack) within `ackIntervalMs` of any frame it received,
 * and the dialer drops a link on which it has written for `deadAfterMs`
 * without hearing one, then redials at once on a fresh connection.
 */

export interface LinkTimers {
  readonly setTimeout: (callback: () => void, delayMs: number) => NodeJS.Timeout;
  readonly clearTimeout: (timer: NodeJS.Timeout) => void;
  readonly now: () => number;
}

/** The ack: a frame with an empty payload (Raft messages are never empty). */
export const LINK_ACK = new Uint8Array(0);

/** Listener side: at most one ack per interval, and always one within the interval of the last frame. */
export class LinkAcker {
  readonly #intervalMs: number;
  readonly #timers: LinkTimers;
  readonly #sendAck: () => void;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(intervalMs: number, timers: LinkTimers, sendAck: () => void) {
    this.#intervalMs = intervalMs;
    this.#timers = timers;
    this.#sendAck = sendAck;
  }

  noteFrame(): void {
    if (this.#closed || this.#timer !== undefined) return;
    this.#timer = this.#timers.setTimeout(() => {
      this.#timer = undefined;
      if (!this.#closed) this.#sendAck();
    }, this.#intervalMs);
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) this.#timers.clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/** Dialer side: how long the oldest write not followed by an ack has waited. */
export class LinkWatchdog {
  readonly #deadAfterMs: number;
  readonly #timers: LinkTimers;
  readonly #onDead: (silentMs: number) => void;
  #unackedSinceMs: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(deadAfterMs: number, timers: LinkTimers, onDead: (silentMs: number) => void) {
    this.#deadAfterMs = deadAfterMs;
    this.#timers = timers;
    this.#onDead = onDead;
  }

  noteWrite(): void {
    if (this.#closed || this.#unackedSinceMs !== undefined) return;
    this.#unackedSinceMs = this.#timers.now();
    this.#arm(this.#deadAfterMs);
  }

  noteAck(): void {
    this.#unackedSinceMs = undefined;
  }

  close(): void {
    this.#closed = true;
    if (this.#timer !== undefined) this.#timers.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(delayMs: number): void {
    if (this.#timer !== undefined) return;
    this.#timer = this.#timers.setTimeout(() => {
      this.#timer = undefined;
      this.#check();
    }, delayMs);
  }

  #check(): void {
    if (this.#closed || this.#unackedSinceMs === undefined) return;
    const silentMs = this.#timers.now() - this.#unackedSinceMs;
    if (silentMs >= this.#deadAfterMs) {
      this.close();
      this.#onDead(silentMs);
      return;
    }
    // Acked meanwhile and written again: wait out the rest for the newer write.
    this.#arm(this.#deadAfterMs - silentMs);
  }
}
