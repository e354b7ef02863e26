/**
 * The soak's per-block model of one volume (issue 7): pure, no I/O.
 *
 * Every block holds one "version": 0 for zeroes (never written, trimmed or
 * zeroed), else the unique write id the workload stamped into it. For each
 * block the model keeps the set of versions a read may legally return:
 *
 * - an acknowledged write (or zero) narrows the set to exactly its version
 *   (ARCHITECTURE invariant 1: an acknowledged write is on every in-sync
 *   replica, so every later read sees it until the next write);
 * - a write that failed or never answered (connection lost, owner killed,
 *   timeout) may have landed or not (invariant 4: after an unclean failover
 *   in-flight regions are made identical to one source), so its version is
 *   added to the set and stays allowed until a later acknowledged write;
 * - a read must return a member of the set, whole: a torn or foreign block
 *   is a violation whatever the set says.
 *
 * The workload keeps at most one request per block in flight, so no two
 * outstanding writes to one block race each other in the model.
 */

/** What a read of one block decoded to (soak-workload's worker reports it). */
export type BlockReading =
  | { readonly kind: 'version'; readonly version: number }
  /** Neither zeroes nor one whole stamped write of this block: torn, stale foreign data, garbage. */
  | { readonly kind: 'garbage'; readonly detail: string };

export interface Violation {
  readonly volume: string;
  readonly block: number;
  /** What was read: a version, or "garbage: …". */
  readonly read: string;
  /** The versions the model allowed at the time. */
  readonly allowed: readonly number[];
  /** The block's last mutations, oldest first: "<ms since the model began> <version> acked|failed". */
  readonly history: readonly string[];
  /** Where the read happened: "workload", "final", "replica n2", … */
  readonly phase: string;
}

/** Mutations remembered per block, for the violation report. */
const HISTORY_PER_BLOCK = 6;

/** Bounds every block's set: a block that keeps failing writes still has a limit. */
export const MAX_POSSIBLE_VERSIONS_PER_BLOCK = 64;

export class BlockModel {
  readonly volume: string;
  readonly blockCount: number;
  /** Absent: only version 0 (zeroes) is possible. */
  readonly #possible = new Map<number, Set<number>>();
  readonly #pending = new Map<number, number>();
  readonly #history = new Map<number, string[]>();
  readonly #now: () => number;
  readonly #startedAt: number;
  #nextVersion = 1;

  /** `now` (default Date.now) only stamps the history. */
  constructor(volume: string, blockCount: number, now: () => number = Date.now) {
    if (!Number.isInteger(blockCount) || blockCount <= 0) throw new RangeError(`blockCount must be a positive integer, got ${blockCount}`);
    this.volume = volume;
    this.blockCount = blockCount;
    this.#now = now;
    this.#startedAt = now();
  }

  /** A fresh version for a write about to be sent to `block` (marks the block busy). */
  beginWrite(block: number): number {
    const version = this.#nextVersion++;
    this.beginMutation(block, version);
    return version;
  }

  /** A zeroing request (WRITE_ZEROES or TRIM, which Plinth reads back as zeroes: invariant 5) about to be sent. */
  beginZero(block: number): number {
    this.beginMutation(block, 0);
    return 0;
  }

  /** True while a mutation of the block is outstanding (the workload picks another block). */
  isBusy(block: number): boolean {
    return this.#pending.has(block);
  }

  /** The server acknowledged the outstanding mutation: it is the only possible content now. */
  acknowledge(block: number): void {
    const version = this.#takePending(block);
    this.#possible.set(block, new Set([version]));
    this.#remember(block, version, 'acked');
  }

  /** The mutation failed or its answer was lost: it may or may not have landed. */
  fail(block: number): void {
    const version = this.#takePending(block);
    this.#remember(block, version, 'failed');
    const set = this.#possible.get(block) ?? new Set([0]);
    set.add(version);
    if (set.size > MAX_POSSIBLE_VERSIONS_PER_BLOCK) {
      throw new RangeError(`block ${block} of ${this.volume} has more than ${MAX_POSSIBLE_VERSIONS_PER_BLOCK} possible versions: the workload should have stopped`);
    }
    this.#possible.set(block, set);
  }

  /** The versions a read of `block` may return now, ascending. */
  allowed(block: number): number[] {
    this.#assertBlock(block);
    return [...(this.#possible.get(block) ?? [0])].sort((a, b) => a - b);
  }

  /** Check one read; undefined when it is allowed. Reads never narrow the model (see the file comment). */
  check(block: number, reading: BlockReading, phase: string): Violation | undefined {
    const allowed = this.allowed(block);
    if (reading.kind === 'version' && allowed.includes(reading.version)) return undefined;
    const read = reading.kind === 'version' ? String(reading.version) : `garbage: ${reading.detail}`;
    return { volume: this.volume, block, read, allowed, phase, history: [...(this.#history.get(block) ?? [])] };
  }

  /** Blocks that were ever mutated (the final checks read these and a sample of the rest). */
  touchedBlocks(): number[] {
    return [...this.#possible.keys()].sort((a, b) => a - b);
  }

  /** Blocks with more than one possible version: writes whose fate is unknown. */
  uncertainBlocks(): number {
    let count = 0;
    for (const set of this.#possible.values()) if (set.size > 1) count += 1;
    return count;
  }

  private beginMutation(block: number, version: number): void {
    this.#assertBlock(block);
    if (this.#pending.has(block)) throw new Error(`block ${block} of ${this.volume} already has a mutation in flight`);
    this.#pending.set(block, version);
  }

  #remember(block: number, version: number, outcome: 'acked' | 'failed'): void {
    const history = this.#history.get(block) ?? [];
    history.push(`${this.#now() - this.#startedAt} ${version} ${outcome}`);
    if (history.length > HISTORY_PER_BLOCK) history.shift();
    this.#history.set(block, history);
  }

  #takePending(block: number): number {
    const version = this.#pending.get(block);
    if (version === undefined) throw new Error(`block ${block} of ${this.volume} has no mutation in flight`);
    this.#pending.delete(block);
    return version;
  }

  #assertBlock(block: number): void {
    if (!Number.isInteger(block) || block < 0 || block >= this.blockCount) {
      throw new RangeError(`block ${block} is outside 0..${this.blockCount - 1} of ${this.volume}`);
    }
  }
}
