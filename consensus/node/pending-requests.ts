/**
 * Book-keeping for callers waiting on the runner: proposals waiting for their
 * entry to apply, and linearizable reads waiting for a ReadIndex and then for
 * the state machine to catch up with it (Raft thesis §6.4). Bounded: the
 * runner refuses new work with BUSY beyond `maxPending`.
 */
import { PlinthError } from '../../common/plinth-error.js';

export interface Waiter<T> {
  readonly resolve: (value: T) => void;
  readonly reject: (err: Error) => void;
  readonly deadlineMs: number;
}

/** The commands of one proposed entry, resolved together when it applies. */
export interface ProposedEntry<R> {
  readonly term: number;
  readonly waiters: readonly Waiter<R>[];
}

export class PendingRequests<R> {
  /** By log index: the proposals this node made as leader. */
  readonly proposed = new Map<number, ProposedEntry<R>>();
  /** By ReadIndex context (hex): reads waiting for leadership confirmation. */
  readonly readsAwaitingIndex = new Map<string, Waiter<number>[]>();
  /** Reads with a known index, waiting for applied >= index; sorted by index. */
  readsAwaitingApply: Array<{ index: number; waiter: Waiter<number> }> = [];
  #count = 0;

  get count(): number {
    return this.#count;
  }

  admit(maxPending: number): void {
    if (this.#count >= maxPending) {
      throw new PlinthError('BUSY', 'too many raft proposals and reads in flight', { maxPending });
    }
    this.#count++;
  }

  /** Release a slot taken by admit() (the request settled). */
  release(n = 1): void {
    this.#count = Math.max(0, this.#count - n);
  }

  /** Settle the proposals of the entry applied at `index` with `term`. */
  settleApplied(index: number, term: number, results: readonly R[], leaderHint: string | null): void {
    const proposed = this.proposed.get(index);
    if (proposed === undefined) return;
    this.proposed.delete(index);
    this.release(proposed.waiters.length);
    if (proposed.term !== term) {
      // Another leader's entry took the slot: ours was overwritten (§5.3), never applied.
      const err = notLeader('the proposal was overwritten by a newer leader', leaderHint);
      for (const waiter of proposed.waiters) waiter.reject(err);
      return;
    }
    proposed.waiters.forEach((waiter, i) => waiter.resolve(results[i] as R));
  }

  /** Reads whose ReadState arrived. */
  readIndexKnown(context: string, index: number): void {
    const waiters = this.readsAwaitingIndex.get(context);
    if (waiters === undefined) return;
    this.readsAwaitingIndex.delete(context);
    for (const waiter of waiters) this.readsAwaitingApply.push({ index, waiter });
    this.readsAwaitingApply.sort((a, b) => a.index - b.index);
  }

  /** Resolve the reads the state machine has caught up with. */
  settleReads(appliedIndex: number): void {
    let served = 0;
    for (const read of this.readsAwaitingApply) {
      if (read.index > appliedIndex) break;
      read.waiter.resolve(read.index);
      served++;
    }
    if (served === 0) return;
    this.readsAwaitingApply = this.readsAwaitingApply.slice(served);
    this.release(served);
  }

  /** Reads not yet confirmed fail when leadership is lost (their ReadState will never come). */
  failUnconfirmedReads(err: Error): void {
    for (const waiters of this.readsAwaitingIndex.values()) {
      for (const waiter of waiters) waiter.reject(err);
      this.release(waiters.length);
    }
    this.readsAwaitingIndex.clear();
  }

  /** Reject everything whose deadline passed. */
  expire(nowMs: number): void {
    const timeout = (what: string): PlinthError => new PlinthError('TIMEOUT', `raft ${what} timed out`);
    for (const [index, proposed] of this.proposed) {
      const live = proposed.waiters.filter((w) => w.deadlineMs > nowMs);
      if (live.length === proposed.waiters.length) continue;
      for (const w of proposed.waiters) if (w.deadlineMs <= nowMs) w.reject(timeout('proposal'));
      this.release(proposed.waiters.length - live.length);
      if (live.length === 0) this.proposed.delete(index);
      else this.proposed.set(index, { term: proposed.term, waiters: live });
    }
    for (const [context, waiters] of this.readsAwaitingIndex) {
      const live = waiters.filter((w) => w.deadlineMs > nowMs);
      for (const w of waiters) if (w.deadlineMs <= nowMs) w.reject(timeout('read'));
      this.release(waiters.length - live.length);
      if (live.length === 0) this.readsAwaitingIndex.delete(context);
      else this.readsAwaitingIndex.set(context, live);
    }
    const liveReads = this.readsAwaitingApply.filter((r) => r.waiter.deadlineMs > nowMs);
    for (const r of this.readsAwaitingApply) if (r.waiter.deadlineMs <= nowMs) r.waiter.reject(timeout('read'));
    this.release(this.readsAwaitingApply.length - liveReads.length);
    this.readsAwaitingApply = liveReads;
  }

  /** Reject everything (shutdown or a fatal storage error). */
  failAll(err: Error): void {
    for (const proposed of this.proposed.values()) for (const w of proposed.waiters) w.reject(err);
    this.proposed.clear();
    this.failUnconfirmedReads(err);
    for (const r of this.readsAwaitingApply) r.waiter.reject(err);
    this.readsAwaitingApply = [];
    this.#count = 0;
  }
}

export function notLeader(message: string, leaderHint: string | null): PlinthError {
  return new PlinthError('NOT_LEADER', message, { leaderHint });
}
