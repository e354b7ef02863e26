import { type FailpointAction, type FailpointSpec, parseFailpointList } from './failpoint-spec.js';

/**
 * The armed failpoints of this process and how often each was reached.
 * Pure bookkeeping (no clock, no I/O); failpoints.ts performs the actions.
 * `armed` is a plain field so a call site costs one property read while
 * nothing is armed (issue 7: "no cost on the hot path when off").
 */

export interface FailpointStatus {
  readonly spec: FailpointSpec;
  /** Times execution reached the point since it was armed. */
  readonly hits: number;
  /** Times it fired. */
  readonly fired: number;
}

interface ArmedPoint {
  spec: FailpointSpec;
  hits: number;
  fired: number;
  remaining: number | undefined;
  skip: number;
}

export class FailpointRegistry {
  /** True while any point is armed; call sites test this before anything else. */
  armed = false;
  readonly #points = new Map<string, ArmedPoint>();

  arm(spec: FailpointSpec): void {
    this.#points.set(spec.name, { spec, hits: 0, fired: 0, remaining: spec.times, skip: spec.skip });
    this.armed = true;
  }

  disarm(name: string): boolean {
    const removed = this.#points.delete(name);
    this.armed = this.#points.size > 0;
    return removed;
  }

  disarmAll(): void {
    this.#points.clear();
    this.armed = false;
  }

  /** Apply a `name=action;…` list (see failpoint-spec.ts); `off` entries disarm. */
  armFromText(text: string): void {
    for (const entry of parseFailpointList(text)) {
      if ('off' in entry) this.disarm(entry.name);
      else this.arm(entry);
    }
  }

  /**
   * Execution reached `name` (about `subject`, when the call site has one):
   * the action to perform, or undefined to carry on.
   */
  check(name: string, subject?: string): FailpointAction | undefined {
    const point = this.#points.get(name);
    if (point === undefined) return undefined;
    if (point.spec.match !== undefined && point.spec.match !== subject) return undefined;
    point.hits += 1;
    if (point.skip > 0) {
      point.skip -= 1;
      return undefined;
    }
    point.fired += 1;
    if (point.remaining !== undefined) {
      point.remaining -= 1;
      if (point.remaining <= 0) this.disarm(name);
    }
    return point.spec.action;
  }

  status(): FailpointStatus[] {
    return [...this.#points.values()].map(({ spec, hits, fired }) => ({ spec, hits, fired }));
  }
}
