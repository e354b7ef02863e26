import type { Logger } from 'pino';

export type Closer = (signal: AbortSignal) => Promise<void>;

/**
 * Things started are closed in reverse order (STYLE "drain, never sleep":
 * reverse dependency order under one AbortSignal). Each closer runs even if
 * an earlier one failed; failures are logged and the first is rethrown, so
 * a half-started daemon cleans up as much as it can.
 */
export class ShutdownStack {
  readonly #closers: Array<{ readonly name: string; readonly close: Closer }> = [];
  readonly #logger: Logger;
  #closing: Promise<void> | null = null;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  push(name: string, close: Closer): void {
    this.#closers.push({ name, close });
  }

  /** Idempotent: a second call waits for the first. */
  closeAll(signal: AbortSignal): Promise<void> {
    this.#closing ??= this.#closeInReverse(signal);
    return this.#closing;
  }

  async #closeInReverse(signal: AbortSignal): Promise<void> {
    let firstError: unknown = null;
    for (const { name, close } of this.#closers.toReversed()) {
      try {
        await close(signal);
        this.#logger.debug({ component: name }, 'closed');
      } catch (err) {
        this.#logger.error({ err, component: name }, 'close failed');
        firstError ??= err;
      }
    }
    if (firstError !== null) throw firstError;
  }
}
