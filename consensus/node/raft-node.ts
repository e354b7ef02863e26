/**
 * The Raft node runner: the one place where the pure core meets I/O. It feeds
 * the core ticks (injected ticker), peer messages (transport) and proposals,
 * and runs the Ready loop of consensus/raft/types.ts:
 *
 *   persist (one synced LevelDB batch) → send → apply → advance
 *
 * Proposals and reads queued during one event-loop turn are packed into one
 * log entry and one ReadIndex round (command-batch.ts), so N concurrent callers
 * cost one append, one sync and one heartbeat round, not N.
 */
import { failpoints, hitFailpoint, hitFailpointSync } from '../../common/failpoints/failpoints.js';
import { PlinthError, isPlinthError, toError } from '../../common/plinth-error.js';
import { bootstrapState, DEFAULT_RAFT_LIMITS, RaftCore } from '../raft/index.js';
import type { ConfChange, Message, Ready, RaftRole, RaftStatus, SoftState } from '../raft/types.js';
import { RaftLogStorage } from '../storage/raft-log-storage.js';
import type { PeerAddress } from '../transport/transport-types.js';
import { encodeBatch, type BatchItem } from './command-batch.js';
import { ReadyApplier } from './ready-applier.js';
import { notLeader, PendingRequests, type Waiter } from './pending-requests.js';
import { intervalTicker, systemClock, type Clock, type RaftNodeModules, type RaftNodeOptions } from './raft-node-options.js';

export interface RaftNodeStatus extends RaftStatus {
  readonly pendingRequests: number;
  readonly snapshotIndex: number;
}

interface QueuedProposal<R> {
  readonly item: BatchItem;
  readonly waiter: Waiter<R>;
}

export class RaftNode<R> {
  readonly #options: RaftNodeOptions;
  readonly #modules: RaftNodeModules<R>;
  readonly #core: RaftCore;
  readonly #storage: RaftLogStorage;
  readonly #clock: Clock;
  readonly #pending = new PendingRequests<R>();
  readonly #applier: ReadyApplier<R>;
  #proposalQueue: QueuedProposal<R>[] = [];
  #readQueue: Waiter<number>[] = [];
  #readContextCounter = 0;
  #softState: SoftState;
  #scheduled = false;
  #driving = false;
  #driveAgain = false;
  #stopTicker: () => void = () => undefined;
  #stopped = false;
  #fatal: Error | null = null;
  readonly #idle: Array<() => void> = [];
  /** Clock time of the last message received from each peer (liveness for the daemon). */
  readonly #lastContactMs = new Map<string, number>();
  /** Times a new leader became known here (metrics: plinth_raft_leader_changes_total). */
  #leaderChanges = 0;

  private constructor(options: RaftNodeOptions, modules: RaftNodeModules<R>, core: RaftCore, storage: RaftLogStorage) {
    this.#options = options;
    this.#modules = modules;
    this.#core = core;
    this.#storage = storage;
    this.#clock = modules.clock ?? systemClock;
    this.#softState = { leaderId: null, role: 'follower', term: core.status().term };
    this.#applier = new ReadyApplier<R>(
      { nodeId: options.nodeId, selfAddress: options.selfAddress, snapshotEveryEntries: options.snapshotEveryEntries },
      { logger: modules.logger, transport: modules.transport, stateMachine: modules.stateMachine, storage, core, pending: this.#pending },
      options.peers,
    );
  }

  /** Open storage, restore the state machine, wire the transport and start ticking. */
  static async start<R>(options: RaftNodeOptions, modules: RaftNodeModules<R>): Promise<RaftNode<R>> {
    const opened = await RaftLogStorage.open(modules.db, { logger: modules.logger });
    let state = opened.state;
    if (opened.isNew && options.bootstrapVoters !== undefined) {
      state = bootstrapState(options.bootstrapVoters);
      await opened.storage.persist({ hardState: state.hardState, entries: state.entries });
      modules.logger.info({ voters: options.bootstrapVoters }, 'raft: bootstrapped a new cluster');
    }
    const core = new RaftCore(
      { config: { ...DEFAULT_RAFT_LIMITS, ...options.raft, id: options.nodeId }, storage: state },
      { prng: modules.prng, logger: modules.logger },
    );
    const node = new RaftNode(options, modules, core, opened.storage);
    node.#applier.restoreFromStorage(state.snapshot);
    modules.transport.onMessage((from, message) => node.#onMessage(from, message));
    node.#stopTicker = (modules.ticker ?? intervalTicker).start(() => node.#onTick(), options.tickMs);
    options.signal?.addEventListener('abort', () => void node.stop(), { once: true });
    node.#schedule();
    return node;
  }

  /** Replicate `command`; resolves with the state machine's result once applied here. */
  propose(command: Buffer): Promise<R> {
    return this.#enqueueProposal({ kind: 'command', command });
  }

  /** Linearizable read barrier (ReadIndex, thesis §6.4): resolves once local state may be read. */
  read(): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      const refusal = this.#refusal();
      if (refusal !== null) return reject(refusal);
      this.#pending.admit(this.#options.maxPendingRequests);
      this.#readQueue.push({ resolve, reject, deadlineMs: this.#clock.nowMs() + this.#options.proposalTimeoutMs });
      this.#schedule();
    });
  }

  /**
   * One membership change (thesis §4.1); resolves when its entry applied here.
   * Core refusals (RAFT_CONF_CHANGE_PENDING, RAFT_LEARNER_BEHIND, ...) reject as is.
   */
  proposeConfChange(change: ConfChange): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const refusal = this.#refusal();
      if (refusal !== null) return reject(refusal);
      this.#pending.admit(this.#options.maxPendingRequests);
      try {
        const ticket = this.#core.proposeConfChange(change);
        const waiter = { resolve: () => resolve(), reject, deadlineMs: this.#clock.nowMs() + this.#options.proposalTimeoutMs };
        this.#pending.proposed.set(ticket.index, { term: ticket.term, waiters: [waiter] });
      } catch (err) {
        this.#pending.release();
        reject(this.#mapCoreError(err));
        return;
      }
      this.#schedule();
    });
  }

  /** Replicate this node's knowledge of `nodeId`'s peer address (used before adding it). */
  registerPeerAddress(nodeId: string, address: PeerAddress): Promise<R> {
    return this.#enqueueProposal({ kind: 'peer-address', nodeId, address });
  }

  get core(): RaftCore {
    return this.#core;
  }

  get nodeId(): string {
    return this.#options.nodeId;
  }

  get role(): RaftRole {
    return this.#softState.role;
  }

  get leaderId(): string | null {
    return this.#softState.leaderId;
  }

  get appliedIndex(): number {
    return this.#applier.appliedIndex;
  }

  /** How often a leader became known here (after none, or another one) since start; read-only, for metrics. */
  get leaderChanges(): number {
    return this.#leaderChanges;
  }

  /** When a message from `nodeId` last arrived (this node's clock); undefined if never since start. */
  lastContactMs(nodeId: string): number | undefined {
    return this.#lastContactMs.get(nodeId);
  }

  addressOf(nodeId: string): PeerAddress | undefined {
    return this.#applier.addresses.get(nodeId);
  }

  status(): RaftNodeStatus {
    return {
      ...this.#core.status(),
      appliedIndex: this.#applier.appliedIndex,
      pendingRequests: this.#pending.count,
      snapshotIndex: this.#applier.snapshotIndex,
    };
  }

  /** Run `fn` against the core on the node's own schedule (membership helpers). */
  withCore<T>(fn: (core: RaftCore) => T): T {
    const result = fn(this.#core);
    this.#schedule();
    return result;
  }

  /** Stop ticking, fail waiters with SHUTTING_DOWN, drain the Ready loop, close the transport. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#stopTicker();
    const err = new PlinthError('SHUTTING_DOWN', 'raft node is shutting down');
    this.#failQueued(err);
    this.#pending.failAll(err);
    if (this.#driving) await new Promise<void>((resolve) => this.#idle.push(resolve));
    await this.#modules.transport.close();
  }

  #refusal(): PlinthError | null {
    if (this.#fatal !== null) return new PlinthError('SHUTTING_DOWN', 'raft node stopped after a fatal error', {}, { cause: this.#fatal });
    if (this.#stopped) return new PlinthError('SHUTTING_DOWN', 'raft node is shutting down');
    if (this.#softState.role !== 'leader') return notLeader('this node is not the raft leader', this.#softState.leaderId);
    return null;
  }

  #enqueueProposal(item: BatchItem): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const refusal = this.#refusal();
      if (refusal !== null) return reject(refusal);
      this.#pending.admit(this.#options.maxPendingRequests);
      this.#proposalQueue.push({ item, waiter: { resolve, reject, deadlineMs: this.#clock.nowMs() + this.#options.proposalTimeoutMs } });
      this.#schedule();
    });
  }

  #onMessage(from: string, message: Message): void {
    if (this.#stopped) return;
    // The transport authenticated `from`; a message claiming another sender is dropped.
    if (message.from !== from) {
      this.#modules.logger.warn({ from, claimed: message.from }, 'raft: message sender does not match its link, dropped');
      return;
    }
    this.#lastContactMs.set(from, this.#clock.nowMs());
    if (failpoints.armed && message.type === 'snapshot-chunk' && message.offset > 0 && !this.#snapshotChunkPasses(from)) return;
    this.#core.step(message);
    this.#schedule();
  }

  #onTick(): void {
    if (this.#stopped) return;
    this.#core.tick();
    this.#pending.expire(this.#clock.nowMs());
    this.#schedule();
  }

  /** Coalesce all work of this event-loop turn into one pass of the Ready loop. */
  #schedule(): void {
    if (this.#scheduled || this.#stopped) return;
    this.#scheduled = true;
    (this.#modules.defer ?? setImmediate)(() => {
      this.#scheduled = false;
      void this.#drive();
    });
  }

  async #drive(): Promise<void> {
    if (this.#driving) {
      this.#driveAgain = true;
      return;
    }
    this.#driving = true;
    try {
      do {
        this.#driveAgain = false;
        this.#flushQueues();
        while (!this.#stopped && this.#core.hasReady()) {
          const ready = this.#core.ready();
          await this.#handleReady(ready);
          this.#core.advance(ready);
          await this.#applier.maybeSnapshot();
          this.#flushQueues();
        }
      } while (this.#driveAgain && !this.#stopped);
    } catch (err) {
      this.#onFatal(toError(err));
    } finally {
      this.#driving = false;
      for (const resolve of this.#idle.splice(0)) resolve();
    }
  }

  async #handleReady(ready: Ready): Promise<void> {
    if (ready.softState !== undefined) this.#onSoftState(ready.softState);
    // A leader may replicate while it writes its own disk (thesis §10.2.1): the
    // core counts the leader toward a quorum only after advance(), i.e. after
    // this persist. Everything else (votes, acknowledgements) waits for it.
    const termDurable = ready.hardState === undefined || this.#storage.isTermAndVoteDurable(ready.hardState);
    const early = this.#softState.role === 'leader' && termDurable ? ready.messages.filter(isLeaderReplication) : [];
    for (const message of early) this.#modules.transport.send(message.to, message);
    // Types.ts step 1: durable before anything else is sent (Raft Figure 2).
    if (failpoints.armed && ready.entries.length > 0) await hitFailpoint('raft.append.before-persist', this.#options.nodeId);
    if (ready.snapshot !== undefined || ready.entries.length > 0 || ready.hardState !== undefined) {
      await this.#storage.persist({
        entries: ready.entries,
        ...(ready.hardState === undefined ? {} : { hardState: ready.hardState }),
        ...(ready.snapshot === undefined ? {} : { snapshot: ready.snapshot }),
      });
    }
    for (const message of ready.messages) if (!early.includes(message)) this.#modules.transport.send(message.to, message);
    if (failpoints.armed && ready.committedEntries.length > 0) await hitFailpoint('raft.apply.before', this.#options.nodeId);
    this.#applier.apply(ready, this.#softState.leaderId);
  }

  /** Failpoint raft.install-snapshot.mid-chunk (issue 7): false drops the chunk, as if the network lost it. */
  #snapshotChunkPasses(from: string): boolean {
    try {
      hitFailpointSync('raft.install-snapshot.mid-chunk', from);
      return true;
    } catch (err) {
      this.#modules.logger.warn({ err: toError(err), from }, 'raft: failpoint dropped an InstallSnapshot chunk');
      return false;
    }
  }

  #onSoftState(soft: SoftState): void {
    const wasLeader = this.#softState.role === 'leader';
    if (soft.leaderId !== null && soft.leaderId !== this.#softState.leaderId) this.#leaderChanges += 1;
    this.#softState = soft;
    this.#modules.logger.info({ role: soft.role, term: soft.term, leaderId: soft.leaderId }, 'raft: role changed');
    if (wasLeader && soft.role !== 'leader') {
      const err = notLeader('leadership lost before the request completed', soft.leaderId);
      this.#failQueued(err);
      this.#pending.failUnconfirmedReads(err);
    }
    if (soft.role === 'leader') this.#applier.onBecameLeader((nodeId, address) => void this.#replicateAddress(nodeId, address));
  }

  #replicateAddress(nodeId: string, address: PeerAddress): Promise<void> {
    return this.registerPeerAddress(nodeId, address).then(
      () => undefined,
      (err: unknown) => this.#modules.logger.debug({ err: toError(err), nodeId }, 'raft: address replication did not complete'),
    );
  }

  /** Pack this turn's proposals into entries and its reads into one ReadIndex round. */
  #flushQueues(): void {
    if (this.#proposalQueue.length > 0) {
      const queue = this.#proposalQueue;
      this.#proposalQueue = [];
      for (let start = 0; start < queue.length; ) {
        const end = this.#batchEnd(queue, start);
        this.#proposeBatch(queue.slice(start, end));
        start = end;
      }
    }
    if (this.#readQueue.length > 0) {
      const reads = this.#readQueue;
      this.#readQueue = [];
      const context = Buffer.alloc(8);
      context.writeDoubleBE(++this.#readContextCounter);
      try {
        this.#core.readIndex(context);
        this.#pending.readsAwaitingIndex.set(context.toString('hex'), reads);
      } catch (err) {
        for (const read of reads) read.reject(this.#mapCoreError(err));
        this.#pending.release(reads.length);
      }
    }
  }

  #batchEnd(queue: readonly QueuedProposal<R>[], start: number): number {
    let bytes = 0;
    let end = start;
    while (end < queue.length && end - start < this.#options.maxBatchCommands) {
      const item = (queue[end] as QueuedProposal<R>).item;
      const size = item.kind === 'command' ? item.command.length + 5 : 256;
      if (end > start && bytes + size > this.#options.maxBatchBytes) break;
      bytes += size;
      end++;
    }
    return end;
  }

  #proposeBatch(batch: readonly QueuedProposal<R>[]): void {
    try {
      const ticket = this.#core.propose(encodeBatch(batch.map((p) => p.item)));
      this.#pending.proposed.set(ticket.index, { term: ticket.term, waiters: batch.map((p) => p.waiter) });
    } catch (err) {
      const mapped = this.#mapCoreError(err);
      for (const proposal of batch) proposal.waiter.reject(mapped);
      this.#pending.release(batch.length);
    }
  }

  #mapCoreError(err: unknown): Error {
    if (isPlinthError(err, 'NOT_LEADER')) return notLeader(err.message, this.#softState.leaderId);
    return toError(err);
  }

  #failQueued(err: Error): void {
    for (const proposal of this.#proposalQueue) proposal.waiter.reject(err);
    for (const read of this.#readQueue) read.reject(err);
    this.#pending.release(this.#proposalQueue.length + this.#readQueue.length);
    this.#proposalQueue = [];
    this.#readQueue = [];
  }

  /** Storage failed: continuing could break Raft's promises, so stop loudly. */
  #onFatal(err: Error): void {
    this.#modules.logger.fatal({ err }, 'raft: fatal error in the ready loop; node stopped');
    this.#fatal = err;
    this.#stopped = true;
    this.#stopTicker();
    this.#failQueued(err);
    this.#pending.failAll(err);
  }
}

/** Leader-to-follower replication traffic, safe to send before the leader's own write. */
function isLeaderReplication(message: Message): boolean {
  return message.type === 'append' || message.type === 'heartbeat' || message.type === 'snapshot-chunk';
}
