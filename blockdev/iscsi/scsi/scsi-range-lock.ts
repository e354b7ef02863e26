/**
 * Byte-range lock for one logical unit: COMPARE AND WRITE holds its range
 * from the read to the write (SBC-3 §5.2 requires the pair to be atomic
 * against every other command), and every asynchronous write holds its
 * range so none lands in between. Non-overlapping ranges never wait for
 * each other. Waiters are bounded by the transport's command window.
 *
 * The uncontended path allocates no promise (perf: one lock per WRITE at
 * 4k qd32 was a promise, two closures and a Set entry per command): a held
 * range is a plain record, and only a waiter creates a promise, woken when
 * any held range is released (it then re-checks its own overlap).
 */
interface HeldRange {
  readonly start: number;
  readonly end: number;
}

export type ReleaseRange = () => void;

export class RangeLock {
  private readonly held = new Set<HeldRange>();
  private waiters: (() => void)[] = [];

  /** Whether no held range overlaps [start, start + lengthBytes): a synchronous write may go ahead unlocked. */
  isFree(start: number, lengthBytes: number): boolean {
    return this.held.size === 0 || this.firstOverlap(start, start + lengthBytes) === undefined;
  }

  /** Take the range now if nothing overlaps it (the common case: no promise, no tick). */
  tryAcquire(start: number, lengthBytes: number): ReleaseRange | undefined {
    const end = start + lengthBytes;
    return this.firstOverlap(start, end) === undefined ? this.take(start, end) : undefined;
  }

  async acquire(start: number, lengthBytes: number): Promise<ReleaseRange> {
    const end = start + lengthBytes;
    while (this.firstOverlap(start, end) !== undefined) {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    return this.take(start, end);
  }

  heldCount(): number {
    return this.held.size;
  }

  private take(start: number, end: number): ReleaseRange {
    const entry: HeldRange = { start, end };
    this.held.add(entry);
    return () => this.release(entry);
  }

  private release(entry: HeldRange): void {
    if (!this.held.delete(entry) || this.waiters.length === 0) {
      return;
    }
    // Wake every waiter: each re-checks its range, the still-blocked ones queue again.
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) {
      wake();
    }
  }

  private firstOverlap(start: number, end: number): HeldRange | undefined {
    for (const entry of this.held) {
      if (entry.start < end && start < entry.end) {
        return entry;
      }
    }
    return undefined;
  }
}
