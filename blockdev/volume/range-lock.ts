import { PlinthError } from '../../common/plinth-error.js';

/**
 * Serialises overlapping byte ranges in arrival order; disjoint ranges run
 * concurrently. The volume controller takes it around every mutation so two
 * overlapping writes reach every replica in the same order (otherwise the
 * replicas could keep different "last" writes and diverge), and catch-up
 * takes it around each copied chunk so a live write cannot land between the
 * read from the source and the write to the target (ARCHITECTURE invariant 4).
 *
 * Ordering rule: a new holder waits for every earlier entry (held or still
 * waiting) that overlaps it, so overlapping requests are granted FIFO.
 */

export type ReleaseRange = () => void;

interface LockEntry {
  readonly offset: number;
  readonly endOffset: number;
  readonly released: Promise<void>;
  readonly release: () => void;
}

export interface RangeLockOptions {
  /** Entries (held + waiting) beyond this fail with BUSY: a limit on everything. */
  readonly maxEntries: number;
}

export class RangeLock {
  private readonly entries: LockEntry[] = [];
  private readonly maxEntries: number;

  constructor(options: RangeLockOptions = { maxEntries: 4096 }) {
    this.maxEntries = options.maxEntries;
  }

  /** Held plus waiting entries: for tests and metrics. */
  size(): number {
    return this.entries.length;
  }

  async acquire(offset: number, lengthBytes: number): Promise<ReleaseRange> {
    if (this.entries.length >= this.maxEntries) {
      throw new PlinthError('BUSY', `range lock has ${this.entries.length} entries, limit reached`, {
        maxEntries: this.maxEntries,
      });
    }
    const endOffset = offset + lengthBytes;
    const blockers = this.entries
      .filter((entry) => overlaps(entry.offset, entry.endOffset, offset, endOffset))
      .map((entry) => entry.released);
    let resolveReleased: () => void = () => undefined;
    const released = new Promise<void>((resolve) => {
      resolveReleased = resolve;
    });
    let done = false;
    const entry: LockEntry = {
      offset,
      endOffset,
      released,
      release: () => {
        if (done) return;
        done = true;
        const index = this.entries.indexOf(entry);
        if (index >= 0) this.entries.splice(index, 1);
        resolveReleased();
      },
    };
    this.entries.push(entry);
    // Blockers always resolve (release never rejects), so this cannot leak the entry.
    await Promise.all(blockers);
    return entry.release;
  }

  /** Run `section` while holding [offset, offset + lengthBytes). */
  async withRange<T>(offset: number, lengthBytes: number, section: () => Promise<T>): Promise<T> {
    const release = await this.acquire(offset, lengthBytes);
    try {
      return await section();
    } finally {
      release();
    }
  }
}

/** Half-open intervals; an empty range overlaps nothing. */
function overlaps(aStart: number, aEnd: number, bStart: number, bEnd: number): boolean {
  return aStart < aEnd && bStart < bEnd && aStart < bEnd && bStart < aEnd;
}
