/**
 * The leader's view of each follower's replication (Figure 2 nextIndex /
 * matchIndex) plus flow control in the style of etcd-io/raft:
 *  - probe: one append at a time until the follower's position is known;
 *  - replicate: optimistic pipelining, bounded by an in-flight window;
 *  - snapshot: the follower is receiving an InstallSnapshot (§7), no appends.
 */
import { PlinthError } from '../../common/plinth-error.js';
import type { NodeId, PeerStatus } from './types.js';

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/** Ring of the last indexes of in-flight append messages, oldest first. */
export class Inflights {
  private readonly lastIndexes: number[] = [];

  constructor(private readonly capacity: number) {}

  add(lastIndex: number): void {
    if (this.full()) throw new PlinthError('INTERNAL', 'inflight window overflow', { capacity: this.capacity });
    this.lastIndexes.push(lastIndex);
  }

  /** Frees every message acknowledged by a match up to `index`. */
  freeUpTo(index: number): void {
    let drop = 0;
    while (drop < this.lastIndexes.length && (this.lastIndexes[drop] ?? Infinity) <= index) drop++;
    this.lastIndexes.splice(0, drop);
  }

  freeFirst(): void {
    this.lastIndexes.shift();
  }

  full(): boolean {
    return this.lastIndexes.length >= this.capacity;
  }

  count(): number {
    return this.lastIndexes.length;
  }

  reset(): void {
    this.lastIndexes.length = 0;
  }
}

export class Progress {
  match = 0;
  next: number;
  state: ProgressState = 'probe';
  /** In probe state: an append is outstanding; wait for its answer or a heartbeat answer. */
  probeSent = false;
  /** Heard from since the last check-quorum round (thesis §6.2). */
  recentActive = false;
  pendingSnapshotIndex = 0;
  /** Next byte of the pending snapshot to send. */
  snapshotOffset = 0;
  readonly inflights: Inflights;

  constructor(
    readonly id: NodeId,
    next: number,
    maxInflight: number,
    public isLearner: boolean,
  ) {
    this.next = next;
    this.inflights = new Inflights(maxInflight);
  }

  becomeProbe(): void {
    // After a snapshot, continue right after it; otherwise just after the match.
    this.next = this.state === 'snapshot' ? Math.max(this.match + 1, this.pendingSnapshotIndex + 1) : this.match + 1;
    this.state = 'probe';
    this.probeSent = false;
    this.pendingSnapshotIndex = 0;
    this.snapshotOffset = 0;
    this.inflights.reset();
  }

  becomeReplicate(): void {
    this.state = 'replicate';
    this.next = this.match + 1;
    this.probeSent = false;
    this.inflights.reset();
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.state = 'snapshot';
    this.pendingSnapshotIndex = snapshotIndex;
    this.snapshotOffset = 0;
    this.probeSent = false;
    this.inflights.reset();
  }

  /** A successful append response; returns whether match advanced. */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, index + 1);
    return updated;
  }

  /**
   * A rejected append for prevLogIndex `rejected`; `matchHint` is the highest
   * index that might still match (§5.3 fast back-off). Returns false for a
   * stale rejection.
   */
  maybeDecreaseTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  /** Bookkeeping after sending entries up to `lastIndex` (or an empty probe). */
  sentEntries(lastIndex: number | null): void {
    if (this.state === 'replicate' && lastIndex !== null) {
      this.next = lastIndex + 1;
      this.inflights.add(lastIndex);
    } else if (this.state === 'probe') {
      this.probeSent = true;
    }
  }

  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }

  toStatus(): PeerStatus {
    return {
      id: this.id,
      matchIndex: this.match,
      nextIndex: this.next,
      state: this.state,
      recentActive: this.recentActive,
      isLearner: this.isLearner,
    };
  }
}
