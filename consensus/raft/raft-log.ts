/**
 * The in-memory view of one server's log (Raft §5.3): a snapshot base, the
 * entries after it, and the indexes that split them into persisted/unpersisted
 * and committed/applied. Invariants (asserted):
 *   snapshotIndex <= applied <= committed <= lastIndex
 *   stableIndex <= lastIndex (entries after stableIndex still have to be persisted)
 */
import { PlinthError } from '../../common/plinth-error.js';
import type { Entry, Snapshot } from './types.js';

export function entrySizeBytes(entry: Entry): number {
  // Data plus a fixed allowance for index/term/type framing.
  return entry.data.length + 24;
}

function assertLog(condition: boolean, message: string, details: Record<string, unknown> = {}): asserts condition {
  if (!condition) throw new PlinthError('INTERNAL', `raft log invariant: ${message}`, details);
}

export class RaftLog {
  /** Latest snapshot: the base of the log (null before the first compaction). */
  snapshot: Snapshot | null;
  /** A snapshot received from the leader that the next Ready must persist and restore. */
  pendingSnapshot: Snapshot | null = null;
  committed: number;
  applied: number;
  /** Highest index known durable in storage. */
  stableIndex: number;
  private baseIndex: number;
  private baseTerm: number;
  private entries: Entry[];

  constructor(snapshot: Snapshot | null, entries: readonly Entry[], committed: number, applied: number) {
    this.snapshot = snapshot;
    this.baseIndex = snapshot?.metadata.index ?? 0;
    this.baseTerm = snapshot?.metadata.term ?? 0;
    this.entries = [...entries];
    entries.forEach((entry, i) => {
      assertLog(entry.index === this.baseIndex + 1 + i, 'stored entries must be contiguous after the snapshot', {
        expected: this.baseIndex + 1 + i,
        got: entry.index,
      });
    });
    this.stableIndex = this.lastIndex();
    this.committed = Math.min(Math.max(committed, this.baseIndex), this.lastIndex());
    this.applied = Math.min(Math.max(applied, this.baseIndex), this.committed);
  }

  firstIndex(): number {
    return this.baseIndex + 1;
  }

  lastIndex(): number {
    return this.baseIndex + this.entries.length;
  }

  lastTerm(): number {
    return this.term(this.lastIndex()) ?? 0;
  }

  snapshotIndex(): number {
    return this.baseIndex;
  }

  /** Term of the entry at index; undefined when compacted away or beyond the end. */
  term(index: number): number | undefined {
    if (index === this.baseIndex) return this.baseTerm;
    if (index < this.baseIndex || index > this.lastIndex()) return undefined;
    return this.entries[index - this.baseIndex - 1]?.term;
  }

  entryAt(index: number): Entry | undefined {
    if (index <= this.baseIndex) return undefined;
    return this.entries[index - this.baseIndex - 1];
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** §5.4.1 election restriction: is a candidate's log at least as up-to-date as ours? */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }

  /** Entries [from, to] capped at maxBytes (always at least one entry when the range is non-empty). */
  slice(from: number, to: number, maxBytes: number): Entry[] {
    assertLog(from > this.baseIndex, 'slice below the snapshot', { from, baseIndex: this.baseIndex });
    const out: Entry[] = [];
    let sizeBytes = 0;
    for (let index = from; index <= Math.min(to, this.lastIndex()); index++) {
      const entry = this.entryAt(index);
      if (entry === undefined) break;
      sizeBytes += entrySizeBytes(entry);
      if (out.length > 0 && sizeBytes > maxBytes) break;
      out.push(entry);
    }
    return out;
  }

  /** First index where `entries` disagree with our log or run past its end; 0 if none (§5.3). */
  findConflict(entries: readonly Entry[]): number {
    for (const entry of entries) {
      if (!this.matchTerm(entry.index, entry.term)) return entry.index;
    }
    return 0;
  }

  /**
   * The fast back-off of §5.3: the largest index <= `index` whose term is <=
   * `term`, with that term. Entries in between cannot match a log whose entry
   * at `index` has `term`, so the leader may skip them all at once.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    let at = Math.min(index, this.lastIndex());
    for (; at >= this.baseIndex; at--) {
      const ourTerm = this.term(at);
      if (ourTerm === undefined) break;
      if (ourTerm <= term) return { index: at, term: ourTerm };
    }
    return { index: at, term: 0 };
  }

  /** Appends entries, first dropping any suffix from entries[0].index on. Returns the truncation index or 0. */
  append(entries: readonly Entry[]): number {
    const first = entries[0];
    if (first === undefined) return 0;
    assertLog(first.index > this.committed, 'cannot overwrite committed entries', {
      index: first.index,
      committed: this.committed,
    });
    assertLog(first.index <= this.lastIndex() + 1, 'gap in the log', { index: first.index, last: this.lastIndex() });
    let truncatedFrom = 0;
    if (first.index <= this.lastIndex()) {
      truncatedFrom = first.index;
      this.entries.length = first.index - this.baseIndex - 1;
      this.stableIndex = Math.min(this.stableIndex, first.index - 1);
    }
    for (const entry of entries) this.entries.push(entry);
    return truncatedFrom;
  }

  commitTo(index: number): boolean {
    if (index <= this.committed) return false;
    assertLog(index <= this.lastIndex(), 'commit beyond the end of the log', { index, last: this.lastIndex() });
    this.committed = index;
    return true;
  }

  unstableEntries(): Entry[] {
    return this.entries.slice(this.stableIndex - this.baseIndex);
  }

  /** Marks entries up to `index` durable, unless they were overwritten since the Ready was taken. */
  stableTo(index: number, term: number): void {
    if (this.matchTerm(index, term) && index > this.stableIndex) this.stableIndex = index;
  }

  /** Committed, durable, not yet applied entries, up to maxBytes (at least one). */
  nextCommittedEntries(maxBytes: number): Entry[] {
    if (this.pendingSnapshot !== null) return [];
    const to = Math.min(this.committed, this.stableIndex);
    if (to <= this.applied) return [];
    return this.slice(this.applied + 1, to, maxBytes);
  }

  hasNextCommittedEntries(): boolean {
    return this.pendingSnapshot === null && Math.min(this.committed, this.stableIndex) > this.applied;
  }

  appliedTo(index: number): void {
    assertLog(index <= this.committed, 'applied beyond commit', { index, committed: this.committed });
    if (index > this.applied) this.applied = index;
  }

  /** A leader's snapshot replaces the whole log (§7: "the follower discards its entire log"). */
  restore(snapshot: Snapshot): void {
    const { index, term } = snapshot.metadata;
    this.entries = [];
    this.baseIndex = index;
    this.baseTerm = term;
    this.snapshot = snapshot;
    this.pendingSnapshot = snapshot;
    this.committed = index;
    this.stableIndex = index;
  }

  snapshotPersisted(snapshot: Snapshot): void {
    if (this.pendingSnapshot === snapshot) this.pendingSnapshot = null;
    if (snapshot.metadata.index > this.applied) this.applied = snapshot.metadata.index;
  }

  /** Drops entries up to the new snapshot's index (§7 log compaction). */
  compact(snapshot: Snapshot): void {
    const { index, term } = snapshot.metadata;
    assertLog(index <= this.applied && index > this.baseIndex, 'compaction index out of range', {
      index,
      applied: this.applied,
      baseIndex: this.baseIndex,
    });
    this.entries = this.entries.slice(index - this.baseIndex);
    this.baseIndex = index;
    this.baseTerm = term;
    this.snapshot = snapshot;
  }
}
