/**
 * Poll `probe` until it returns a value (not undefined), bounded by
 * `timeoutMs`; a probe that throws counts as "not yet" and its last error is
 * reported on timeout. Every load loop in tests is bounded in time.
 */
export async function eventually<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>, pollMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = 'no attempt';
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
      last = 'condition not met';
    } catch (err) {
      last = err;
    }
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
  throw new Error(`timed out waiting for ${what}: ${last instanceof Error ? last.message : String(last)}`);
}

/**
 * The value of `value()` once it stopped changing for `quietMs` (bounded by
 * `timeoutMs`): how far a server went before a limit held it.
 */
export async function settled(value: () => number, quietMs = 100, timeoutMs = 5000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let last = value();
  let since = Date.now();
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10));
    const now = value();
    if (now !== last) {
      last = now;
      since = Date.now();
    } else if (Date.now() - since >= quietMs) {
      return now;
    }
  }
  return last;
}
