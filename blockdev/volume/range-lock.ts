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
  /** Created only when a later overlapping request has to wait for this one. */
  released: Promise<void> | undefined;
  notifyReleased: (() => void) | undefined;
  done: boolean;
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

  /**
   * Nothing overlapping [offset, offset + lengthBytes) is held or waiting: a
   * write that completes synchronously (BlockDevice.writeInline) cannot land
   * inside another holder's section, so it may go ahead without an entry.
   */
  isFree(offset: number, lengthBytes: number): boolean {
    const endOffset = offset + lengthBytes;
    for (const entry of this.entries) {
      if (overlaps(entry.offset, entry.endOffset, offset, endOffset)) return false;
    }
    return true;
  }

  /**
   * Take the range now when nothing overlapping is held or waiting (the
   * common case: disjoint writes), without a promise; undefined changes
   * nothing (then acquire() queues behind the overlapping entries, or says BUSY).
   */
  tryAcquire(offset: number, lengthBytes: number): ReleaseRange | undefined {
    if (this.entries.length >= this.maxEntries) return undefined;
    const endOffset = offset + lengthBytes;
    for (const entry of this.entries) {
      if (overlaps(entry.offset, entry.endOffset, offset, endOffset)) return undefined;
    }
    return this.add(offset, endOffset);
  }

  async acquire(offset: number, lengthBytes: number): Promise<ReleaseRange> {
    if (this.entries.length >= this.maxEntries) {
      throw new PlinthError('BUSY', `range lock has ${this.entries.length} entries, limit reached`, {
        maxEntries: this.maxEntries,
      });
    }
    const endOffset = offset + lengthBytes;
    const blockers: Promise<void>[] = [];
    for (const entry of this.entries) {
      if (overlaps(entry.offset, entry.endOffset, offset, endOffset)) blockers.push(releasedOf(entry));
    }
    const release = this.add(offset, endOffset);
    // Blockers always resolve (release never rejects), so this cannot leak the entry.
    if (blockers.length > 0) await Promise.all(blockers);
    return release;
  }

  /** Run `section` while holding [offset, offset + lengthBytes). */
  async withRange<T>(offset: number, lengthBytes: number, section: () => Promise<T>): Promise<T> {
    const release = this.tryAcquire(offset, lengthBytes) ?? (await this.acquire(offset, lengthBytes));
    try {
      return await section();
    } finally {
      release();
    }
  }

  private add(offset: number, endOffset: number): ReleaseRange {
    const entry: LockEntry = { offset, endOffset, released: undefined, notifyReleased: undefined, done: false };
    this.entries.push(entry);
    return () => {
      if (entry.done) return;
      entry.done = true;
      const index = this.entries.indexOf(entry);
      if (index >= 0) this.entries.splice(index, 1);
      entry.notifyReleased?.();
    };
  }
}

function releasedOf(entry: LockEntry): Promise<void> {
  if (entry.done) return Promise.resolve();
  entry.released ??= new Promise<void>((resolve) => {
    entry.notifyReleased = resolve;
  });
  return entry.released;
}

/** Half-open intervals; an empty range overlaps nothing. */
function overlaps(aStart: number, aEnd: number, bStart: number, bEnd: number): boolean {
  return aStart < aEnd && bStart < bEnd && aStart < bEnd && bStart < aEnd;
}
