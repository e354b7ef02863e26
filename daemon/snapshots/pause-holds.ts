import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { PlinthError } from '../../common/plinth-error.js';
import type { PausableVolume } from './snapshot-coordinator.js';

/**
 * Issue 8, group snapshots: writes of volumes attached here held back for
 * another node's coordinator (peer RPC `volume-pause` / `volume-resume`).
 * Every hold ends by itself after its holdMs, so a coordinator that dies
 * half-way never leaves a volume paused; at most MAX_HOLD_MS.
 */

export const MAX_HOLD_MS = 30_000;

interface Hold {
  readonly volume: PausableVolume;
  readonly timer: NodeJS.Timeout;
}

export class PauseHolds {
  readonly #localVolume: (name: string) => PausableVolume | undefined;
  readonly #logger: Logger;
  /** token → hold */
  readonly #holds = new Map<string, Hold>();

  constructor(modules: { readonly localVolume: (name: string) => PausableVolume | undefined; readonly logger: Logger }) {
    this.#localVolume = modules.localVolume;
    this.#logger = modules.logger;
  }

  /** Pause and drain the volume's writes; null when it is not served here (nothing to pause). */
  async pause(name: string, holdMs: number): Promise<{ token: string } | null> {
    if (!Number.isSafeInteger(holdMs) || holdMs <= 0 || holdMs > MAX_HOLD_MS) {
      throw new PlinthError('INVALID_ARGUMENT', `a write pause is held 1 to ${MAX_HOLD_MS} ms, not ${holdMs}`, { holdMs });
    }
    const volume = this.#localVolume(name);
    if (volume === undefined) return null;
    const token = randomUUID();
    // The clock starts before the drain: the hold bound covers it too.
    const timer = setTimeout(() => {
      if (this.#holds.delete(token)) {
        volume.resume();
        this.#logger.warn({ volume: name, holdMs }, 'write pause for a group snapshot expired: writes resumed');
      }
    }, holdMs);
    this.#holds.set(token, { volume, timer });
    try {
      await volume.pause();
    } catch (err) {
      this.resume(token);
      throw err;
    }
    this.#logger.info({ volume: name, holdMs }, 'writes paused for a group snapshot');
    return { token };
  }

  /** Idempotent: an expired or unknown token is a no-op. */
  resume(token: string): void {
    const hold = this.#holds.get(token);
    if (hold === undefined) return;
    this.#holds.delete(token);
    clearTimeout(hold.timer);
    hold.volume.resume();
  }

  close(): void {
    for (const token of [...this.#holds.keys()]) this.resume(token);
  }
}
