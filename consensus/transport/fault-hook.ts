/**
 * Test-only faults for the Raft transport: drop, delay and partition. The
 * integration tests drive it through the fixture's control channel to cut a
 * node off and heal it; production leaves it empty, where every check is a
 * cheap set lookup. Faults apply on both the send and the receive side of the
 * node that holds the hook, so partitioning one node isolates it symmetrically.
 */
export interface FaultState {
  /** Peers this node can neither send to nor hear from. */
  readonly partitionedPeers: ReadonlySet<string>;
  /** Probability in [0, 1] that any one outbound message is dropped. */
  readonly dropProbability: number;
  /** Extra delay added to every outbound message. */
  readonly delayMs: number;
}

export class FaultHook {
  #partitionedPeers = new Set<string>();
  #dropProbability = 0;
  #delayMs = 0;
  readonly #random: () => number;

  constructor(random: () => number) {
    this.#random = random;
  }

  partition(peerIds: Iterable<string>): void {
    for (const id of peerIds) this.#partitionedPeers.add(id);
  }

  setDropProbability(probability: number): void {
    this.#dropProbability = Math.min(1, Math.max(0, probability));
  }

  setDelayMs(delayMs: number): void {
    this.#delayMs = Math.max(0, delayMs);
  }

  /** Remove every fault. */
  heal(): void {
    this.#partitionedPeers.clear();
    this.#dropProbability = 0;
    this.#delayMs = 0;
  }

  shouldDropOutbound(to: string): boolean {
    if (this.#partitionedPeers.has(to)) return true;
    return this.#dropProbability > 0 && this.#random() < this.#dropProbability;
  }

  shouldDropInbound(from: string): boolean {
    return this.#partitionedPeers.has(from);
  }

  get delayMs(): number {
    return this.#delayMs;
  }

  state(): FaultState {
    return {
      partitionedPeers: new Set(this.#partitionedPeers),
      dropProbability: this.#dropProbability,
      delayMs: this.#delayMs,
    };
  }
}
