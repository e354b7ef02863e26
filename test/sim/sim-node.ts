/**
 * One simulated server: a RaftCore over a SimStorage "disk" and a KV state
 * machine, plus the server side of client requests (proposals resolved by
 * index+term, reads via ReadIndex). Memory dies with a crash; storage stays.
 */
import type { Logger } from 'pino';
import { PlinthError, isPlinthError } from '../../common/plinth-error.js';
import type { Entry, NodeId, RaftConfig, ReadState, Snapshot } from '../../consensus/raft/index.js';
import { SeededPrng } from '../../common/prng.js';
import { RaftCore } from '../../consensus/raft/index.js';
import { decodeKvCommand, encodeKvCommand, KvStateMachine, type KvCommand } from './kv-state-machine.js';
import type { SimStorage } from './sim-storage.js';

/** What a server answers a client: a result, a definite refusal, or nothing (the client times out). */
export type ServerReply =
  | { readonly kind: 'write-done'; readonly ok: boolean }
  | { readonly kind: 'read-done'; readonly value: string | null }
  | { readonly kind: 'refused'; readonly leaderHint: NodeId | null };

export type ReplyFn = (reply: ServerReply) => void;

export class SimNode {
  core: RaftCore | null = null;
  kv = new KvStateMachine();
  incarnation = 0;
  readyScheduled = false;
  readyOutstanding = false;
  private pendingProposals = new Map<number, { term: number; reply: ReplyFn }>();
  private pendingReads = new Map<string, { key: string; reply: ReplyFn }>();
  private waitingReads: ReadState[] = [];

  constructor(
    readonly id: NodeId,
    readonly storage: SimStorage,
    readonly tickIntervalMs: number,
    private readonly config: RaftConfig,
    private readonly logger: Logger,
  ) {}

  get alive(): boolean {
    return this.core !== null;
  }

  start(prngSeed: number): void {
    const state = this.storage.state();
    this.kv = state.snapshot === null ? new KvStateMachine() : KvStateMachine.restore(state.snapshot.data);
    this.core = new RaftCore(
      { config: this.config, storage: state, appliedIndex: this.kv.appliedIndex },
      { prng: new SeededPrng(prngSeed), logger: this.logger },
    );
    this.incarnation++;
  }

  crash(): void {
    this.core = null;
    this.incarnation++;
    this.readyScheduled = false;
    this.readyOutstanding = false;
    this.pendingProposals = new Map();
    this.pendingReads = new Map();
    this.waitingReads = [];
  }

  handleWrite(command: KvCommand, reply: ReplyFn): void {
    const core = this.core;
    if (core === null) return;
    try {
      const ticket = core.propose(encodeKvCommand(command));
      this.pendingProposals.set(ticket.index, { term: ticket.term, reply });
    } catch (err) {
      if (!isPlinthError(err)) throw err;
      reply({ kind: 'refused', leaderHint: core.status().leaderId });
    }
  }

  handleRead(key: string, context: Buffer, reply: ReplyFn): void {
    const core = this.core;
    if (core === null) return;
    try {
      core.readIndex(context);
      this.pendingReads.set(context.toString('hex'), { key, reply });
    } catch (err) {
      if (!isPlinthError(err)) throw err;
      reply({ kind: 'refused', leaderHint: core.status().leaderId });
    }
  }

  restoreSnapshot(snapshot: Snapshot): void {
    this.kv = KvStateMachine.restore(snapshot.data);
    if (this.kv.appliedIndex !== snapshot.metadata.index) {
      throw new PlinthError('INTERNAL', 'snapshot data and metadata disagree', { id: this.id });
    }
    // Proposals covered by the snapshot were never applied here one by one: their clients time out.
    for (const index of [...this.pendingProposals.keys()]) {
      if (index <= snapshot.metadata.index) this.pendingProposals.delete(index);
    }
  }

  apply(entry: Entry): void {
    if (entry.type === 'normal' && entry.data.length > 0) {
      const result = this.kv.apply(entry.index, decodeKvCommand(entry.data));
      const pending = this.pendingProposals.get(entry.index);
      if (pending !== undefined) {
        this.pendingProposals.delete(entry.index);
        // Same index, other term: our entry was overwritten and can never commit (§5.3).
        pending.reply(pending.term === entry.term ? { kind: 'write-done', ok: result.ok } : { kind: 'refused', leaderHint: null });
      }
    } else {
      this.kv.skip(entry.index);
      const pending = this.pendingProposals.get(entry.index);
      if (pending !== undefined) {
        this.pendingProposals.delete(entry.index);
        pending.reply({ kind: 'refused', leaderHint: null });
      }
    }
  }

  acceptReadStates(states: readonly ReadState[]): void {
    this.waitingReads.push(...states);
  }

  /** Thesis §6.4 step 4: serve a read once the state machine reached its read index. */
  serveReads(): void {
    const still: ReadState[] = [];
    for (const state of this.waitingReads) {
      if (state.index > this.kv.appliedIndex) {
        still.push(state);
        continue;
      }
      const key = state.context.toString('hex');
      const pending = this.pendingReads.get(key);
      if (pending === undefined) continue;
      this.pendingReads.delete(key);
      pending.reply({ kind: 'read-done', value: this.kv.get(pending.key) });
    }
    this.waitingReads = still;
  }

  pendingCount(): number {
    return this.pendingProposals.size + this.pendingReads.size;
  }
}
