/**
 * ReadIndex bookkeeping on the leader (thesis §6.4): each read records the
 * commit index when it arrived, then waits for a quorum of heartbeat
 * acknowledgements carrying its context, which proves that no newer leader
 * existed at that moment. Acknowledging a later request confirms every
 * earlier one too, so they are released in arrival order.
 */
import type { NodeId, ReadState } from './types.js';

interface PendingRead {
  readonly index: number;
  readonly context: Buffer;
  readonly acks: Set<NodeId>;
}

export class ReadOnlyQueue {
  private readonly pending = new Map<string, PendingRead>();
  private readonly order: string[] = [];

  constructor(private readonly maxPending: number) {}

  size(): number {
    return this.order.length;
  }

  isFull(): boolean {
    return this.order.length >= this.maxPending;
  }

  /** Returns false if the context is already pending (duplicates are ignored). */
  add(index: number, context: Buffer, selfId: NodeId): boolean {
    const key = context.toString('hex');
    if (this.pending.has(key)) return false;
    this.pending.set(key, { index, context, acks: new Set([selfId]) });
    this.order.push(key);
    return true;
  }

  /** Records an ack; returns the set of acknowledgers (or null if unknown). */
  ack(from: NodeId, context: Buffer): ReadonlySet<NodeId> | null {
    const read = this.pending.get(context.toString('hex'));
    if (read === undefined) return null;
    read.acks.add(from);
    return read.acks;
  }

  /** Releases the request with this context and every request before it. */
  releaseThrough(context: Buffer): ReadState[] {
    const key = context.toString('hex');
    const at = this.order.indexOf(key);
    if (at < 0) return [];
    const released = this.order.splice(0, at + 1);
    const out: ReadState[] = [];
    for (const k of released) {
      const read = this.pending.get(k);
      this.pending.delete(k);
      if (read !== undefined) out.push({ index: read.index, context: read.context });
    }
    return out;
  }

  lastContext(): Buffer | null {
    const key = this.order[this.order.length - 1];
    return key === undefined ? null : (this.pending.get(key)?.context ?? null);
  }

  reset(): void {
    this.pending.clear();
    this.order.length = 0;
  }
}
