/**
 * The simulated network: per-message loss, duplication and random delay
 * (which also reorders), plus partitions expressed as a set of cut directed
 * links: symmetric splits, one-way (asymmetric) cuts and bridges (two sides
 * that only one node can reach).
 */
import type { Prng } from '../../common/prng.js';
import type { Message, NodeId } from '../../consensus/raft/index.js';
import type { EventQueue } from './event-queue.js';

export interface NetworkFaults {
  lossRate: number;
  duplicateRate: number;
  minDelayMs: number;
  maxDelayMs: number;
  /** Chance that a message takes up to 10x the max delay (long reordering). */
  slowRate: number;
}

export const CALM_NETWORK: NetworkFaults = { lossRate: 0, duplicateRate: 0, minDelayMs: 1, maxDelayMs: 5, slowRate: 0 };

export class SimNetwork {
  faults: NetworkFaults = { ...CALM_NETWORK };
  private readonly cut = new Set<string>();
  delivered = 0;
  dropped = 0;

  constructor(
    private readonly queue: EventQueue,
    private readonly prng: Prng,
    private readonly deliver: (message: Message) => void,
  ) {}

  send(message: Message): void {
    if (this.isCut(message.from, message.to) || this.prng.nextFloat() < this.faults.lossRate) {
      this.dropped++;
      return;
    }
    const copies = this.prng.nextFloat() < this.faults.duplicateRate ? 2 : 1;
    for (let i = 0; i < copies; i++) this.queue.schedule(this.delayMs(), () => this.arrive(message));
  }

  private arrive(message: Message): void {
    // A partition that started while the message was in flight also drops it.
    if (this.isCut(message.from, message.to)) {
      this.dropped++;
      return;
    }
    this.delivered++;
    this.deliver(message);
  }

  private delayMs(): number {
    const { minDelayMs, maxDelayMs, slowRate } = this.faults;
    const base = minDelayMs + this.prng.nextFloat() * (maxDelayMs - minDelayMs);
    return this.prng.nextFloat() < slowRate ? base * (1 + this.prng.nextInt(10)) : base;
  }

  isCut(from: NodeId, to: NodeId): boolean {
    return this.cut.has(`${from}->${to}`);
  }

  cutLink(from: NodeId, to: NodeId): void {
    this.cut.add(`${from}->${to}`);
  }

  /** Symmetric partition: no traffic between the sides. */
  split(sideA: readonly NodeId[], sideB: readonly NodeId[]): void {
    for (const a of sideA) {
      for (const b of sideB) {
        this.cutLink(a, b);
        this.cutLink(b, a);
      }
    }
  }

  /** Bridge: two sides that cannot talk to each other, both connected to `bridge`. */
  bridge(sideA: readonly NodeId[], bridge: NodeId, sideB: readonly NodeId[]): void {
    this.split(
      sideA.filter((id) => id !== bridge),
      sideB.filter((id) => id !== bridge),
    );
  }

  heal(): void {
    this.cut.clear();
  }

  cutCount(): number {
    return this.cut.size;
  }
}
