// @ts-check
/**
 * Calls `tick` every `intervalMs`, one at a time: the next run is scheduled
 * only after the previous one settled, so a slow daemon never piles up
 * requests. `refreshNow` runs at once (after an action) and re-arms the timer.
 */
export class Refresher {
  /** @type {number} */ #intervalMs;
  /** @type {() => Promise<void>} */ #tick;
  /** @type {number | undefined} */ #timer;
  /** @type {Promise<void> | undefined} */ #running;
  #stopped = true;

  /** @param {number} intervalMs @param {() => Promise<void>} tick */
  constructor(intervalMs, tick) {
    this.#intervalMs = intervalMs;
    this.#tick = tick;
  }

  start() {
    this.#stopped = false;
    void this.refreshNow();
  }

  stop() {
    this.#stopped = true;
    window.clearTimeout(this.#timer);
  }

  /** @returns {Promise<void>} */
  async refreshNow() {
    window.clearTimeout(this.#timer);
    // A run in flight may predate the action that asked for this one: wait, then run again.
    while (this.#running !== undefined) await this.#running;
    if (this.#stopped) return;
    this.#running = this.#tick();
    try {
      await this.#running;
    } finally {
      this.#running = undefined;
      if (!this.#stopped) this.#timer = window.setTimeout(() => void this.refreshNow(), this.#intervalMs);
    }
  }
}
