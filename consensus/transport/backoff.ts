/**
 * Reconnect delay: exponential in the number of consecutive failures, capped,
 * with "equal jitter" (half fixed, half random) so that peers restarted
 * together do not reconnect in lock-step. The random source is injected so
 * tests and the simulator stay deterministic.
 */
export interface BackoffOptions {
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

/** `attempt` counts consecutive failures from 0; `random` returns [0, 1). */
export function reconnectDelayMs(attempt: number, options: BackoffOptions, random: () => number): number {
  const exponent = Math.min(attempt, 30);
  const ceilingMs = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** exponent);
  const half = ceilingMs / 2;
  return Math.round(half + random() * half);
}
