/**
 * A pass run every `intervalMs` that never overlaps itself: a slow pass (a
 * proposal waiting for Raft, a pool delete) delays the next one instead of
 * racing it. The reconcilers and watchers of the daemon share it; `run()`
 * lets tests and callers drive one pass deterministically.
 */

import type { Logger } from 'pino';
import { toError } from '../../common/plinth-error.js';

export interface PeriodicTimers {
  readonly setInterval?: (callback: () => void, ms: number) => NodeJS.Timeout;
  readonly clearInterval?: (timer: NodeJS.Timeout) => void;
}

export interface PeriodicPassModules extends PeriodicTimers {
  readonly logger: Logger;
  /** Called when a pass is due while the previous one still runs (to report a stuck pass). */
  readonly onOverlap?: () => void;
}

export class PeriodicPass {
  readonly #intervalMs: number;
  readonly #pass: () => Promise<void>;
  readonly #modules: PeriodicPassModules;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #closed = false;

  /** A pass should handle its own failures; one that escapes is logged and the next pass runs anyway. */
  constructor(intervalMs: number, pass: () => Promise<void>, modules: PeriodicPassModules) {
    this.#intervalMs = intervalMs;
    this.#pass = pass;
    this.#modules = modules;
  }

  start(): void {
    if (this.#timer !== undefined || this.#closed) return;
    const tick = (): void => {
      this.run().catch((err: unknown) => this.#modules.logger.error({ err: toError(err) }, 'periodic pass failed; the next one retries'));
    };
    this.#timer = (this.#modules.setInterval ?? setInterval)(tick, this.#intervalMs);
    // The daemon's servers keep the process alive, never a reconciler's timer.
    this.#timer.unref();
  }

  get running(): boolean {
    return this.#running !== undefined;
  }

  /** One pass now, or the one already running. */
  run(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (this.#running !== undefined) this.#modules.onOverlap?.();
    this.#running ??= this.#pass().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  /** Stop the timer and wait for a running pass to finish. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) (this.#modules.clearInterval ?? clearInterval)(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }
}
