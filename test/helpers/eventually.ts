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
