import type { Readiness } from '../control-plane.js';

/**
 * Readiness is "every component said it is up, and nobody is shutting down".
 * Components register as pending when the daemon starts building them, so
 * /readyz names exactly what is still missing.
 */
export class ReadinessTracker {
  readonly #pending = new Map<string, string>();
  #stopping: string | null = null;

  /** Mark `component` as not ready yet, with the reason /readyz reports. */
  expect(component: string, reason: string): void {
    this.#pending.set(component, reason);
  }

  markReady(component: string): void {
    this.#pending.delete(component);
  }

  markStopping(reason: string): void {
    this.#stopping = reason;
  }

  readiness(): Readiness {
    const reasons = [...this.#pending.entries()].map(([component, reason]) => `${component}: ${reason}`);
    if (this.#stopping !== null) reasons.unshift(this.#stopping);
    return { ready: reasons.length === 0, reasons };
  }
}
