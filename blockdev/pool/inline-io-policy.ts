import { PlinthError } from '../../common/plinth-error.js';

/**
 * When a disk read or write runs synchronously on the event loop ("inline")
 * instead of on the libuv threadpool.
 *
 * Why (measured on the 2-core bench VM, Node 20): handing one fs.read or
 * fs.write to the threadpool costs ~20-25 µs of main-thread time (uv mutex +
 * futex wake) before any byte moves, while fs.readSync of 4 KiB from the page
 * cache costs ~2 µs and fs.writeSync of 4 KiB ~14 µs. Inline small I/O took
 * 4k-randread-qd32 from 0.45x to ~1.0x of nbdkit and 4k-randwrite-qd32 from
 * 0.80x to ~1.3x. 1 MiB is different: readSync ~160-190 µs, writeSync ~106 µs
 * of a loop that also has to move 1 MiB through the socket, so large requests
 * stay on the threadpool, where they overlap with the loop.
 *
 * The risk of inline I/O is a cache miss or dirty-page throttling: then the
 * synchronous call blocks the whole loop for a device latency. So every
 * inline op is timed, and `slowOpsToCoolDown` consecutive ops slower than
 * `slowOpMs` (they waited for the device) send all of this disk's I/O to the
 * threadpool for a cool-down. One slow op is not enough: on the noisy 2-core
 * bench VM a preempted 2 µs read also takes > 1 ms now and then, and each
 * false cool-down put the qd1 rows back at threadpool speed (~0.6x).
 * Each further slow op right after a cool-down doubles it (up to
 * `maxCoolDownMs`); a fast inline op resets it. A cold disk therefore stalls
 * the loop at most once per cool-down, for one device latency.
 *
 * fdatasync is never inline (disk.ts): it always waits for the device.
 *
 * Pure: the clock is injected, so tests drive it.
 */

export interface InlineIoOptions {
  /** Reads and writes up to this many bytes may run inline; 0 turns inline I/O off. */
  readonly maxInlineBytes: number;
  /** An inline op slower than this blocked on the device. */
  readonly slowOpMs: number;
  /** Consecutive slow inline ops that start a cool-down (>= 1). */
  readonly slowOpsToCoolDown: number;
  /** First cool-down after a slow op. */
  readonly coolDownMs: number;
  /** Upper bound of the doubling cool-down. */
  readonly maxCoolDownMs: number;
}

export const DEFAULT_INLINE_IO_OPTIONS: InlineIoOptions = Object.freeze({
  maxInlineBytes: 64 * 1024,
  slowOpMs: 1,
  slowOpsToCoolDown: 2,
  coolDownMs: 1000,
  maxCoolDownMs: 10_000,
});

/** Milliseconds, monotonic, sub-millisecond resolution (performance.now in production). */
export interface InlineIoClock {
  now(): number;
}

export interface InlineIoStats {
  readonly inlineOps: number;
  readonly threadpoolOps: number;
  readonly slowInlineOps: number;
  /** Cool-down that the next slow op would start. */
  readonly nextCoolDownMs: number;
}

export function resolveInlineIoOptions(overrides: Partial<InlineIoOptions> = {}): InlineIoOptions {
  const options: InlineIoOptions = { ...DEFAULT_INLINE_IO_OPTIONS, ...overrides };
  for (const [name, value] of Object.entries(options)) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new PlinthError('CONFIG_INVALID', `inline I/O option ${name} must be a non-negative number, got ${String(value)}`, { name, value });
    }
  }
  if (options.slowOpsToCoolDown < 1) {
    throw new PlinthError('CONFIG_INVALID', 'inline I/O option slowOpsToCoolDown must be at least 1', {
      slowOpsToCoolDown: options.slowOpsToCoolDown,
    });
  }
  if (options.maxCoolDownMs < options.coolDownMs) {
    throw new PlinthError('CONFIG_INVALID', 'inline I/O option maxCoolDownMs must be at least coolDownMs', {
      coolDownMs: options.coolDownMs,
      maxCoolDownMs: options.maxCoolDownMs,
    });
  }
  return Object.freeze(options);
}

export class InlineIoPolicy {
  readonly #options: InlineIoOptions;
  readonly #clock: InlineIoClock;
  /** Inline I/O resumes at this clock time. */
  #coolDownUntilMs = Number.NEGATIVE_INFINITY;
  #nextCoolDownMs: number;
  #inlineOps = 0;
  #threadpoolOps = 0;
  #slowInlineOps = 0;
  #consecutiveSlowOps = 0;

  constructor(options: InlineIoOptions, clock: InlineIoClock) {
    this.#options = options;
    this.#clock = clock;
    this.#nextCoolDownMs = options.coolDownMs;
  }

  /** Decide for one op; if true the caller runs it inline and reports its duration. */
  shouldInline(lengthBytes: number): boolean {
    if (this.tryInline(lengthBytes)) {
      return true;
    }
    this.#threadpoolOps += 1;
    return false;
  }

  /**
   * Like shouldInline, but a "no" is not counted: for callers that try the
   * inline path first and may still not use the threadpool (they report it
   * with noteThreadpoolOp when they do), so no op is counted twice.
   */
  tryInline(lengthBytes: number): boolean {
    if (lengthBytes <= this.#options.maxInlineBytes && this.#clock.now() >= this.#coolDownUntilMs) {
      this.#inlineOps += 1;
      return true;
    }
    return false;
  }

  /** One op went to the threadpool after tryInline declined it. */
  noteThreadpoolOp(): void {
    this.#threadpoolOps += 1;
  }

  /** Start time for an inline op, from the same clock. */
  startInline(): number {
    return this.#clock.now();
  }

  /** An inline op started at `startedMs` has finished (successfully or not). */
  finishInline(startedMs: number): void {
    const now = this.#clock.now();
    if (now - startedMs <= this.#options.slowOpMs) {
      this.#nextCoolDownMs = this.#options.coolDownMs;
      this.#consecutiveSlowOps = 0;
      return;
    }
    this.#slowInlineOps += 1;
    this.#consecutiveSlowOps += 1;
    if (this.#consecutiveSlowOps < this.#options.slowOpsToCoolDown) {
      return;
    }
    this.#consecutiveSlowOps = 0;
    this.#coolDownUntilMs = now + this.#nextCoolDownMs;
    this.#nextCoolDownMs = Math.min(this.#nextCoolDownMs * 2, this.#options.maxCoolDownMs);
  }

  stats(): InlineIoStats {
    return {
      inlineOps: this.#inlineOps,
      threadpoolOps: this.#threadpoolOps,
      slowInlineOps: this.#slowInlineOps,
      nextCoolDownMs: this.#nextCoolDownMs,
    };
  }
}
