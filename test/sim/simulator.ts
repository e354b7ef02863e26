/**
 * Deterministic cluster simulation from one seed (in the spirit of
 * TigerBeetle's VOPR): 3–5 RaftCores on a virtual clock and network, a safety
 * phase with faults (loss, delay, duplication, reordering, partitions, crashes,
 * skewed timers, membership changes, snapshots, leadership transfers), then a
 * liveness phase without faults that must converge. Same seed → same trace.
 */
import { createHash, type Hash } from 'node:crypto';
import { pino } from 'pino';
import type { Message, NodeId, RaftCanary, RaftConfig, Ready } from '../../consensus/raft/index.js';
import { SeededPrng } from '../../common/prng.js';
import { bootstrapState, DEFAULT_RAFT_LIMITS, emptyState } from '../../consensus/raft/index.js';
import { EventQueue } from './event-queue.js';
import { checkKvHistory, type HistoryOp } from './linearizability.js';
import { SafetyChecker } from './safety-checker.js';
import { type ClientOp, SimClient } from './sim-clients.js';
import { Nemesis } from './sim-nemesis.js';
import { CALM_NETWORK, SimNetwork } from './sim-network.js';
import { type ReplyFn, SimNode } from './sim-node.js';
import { SimStorage } from './sim-storage.js';

export const TICK_MS = 10;
export const ELECTION_TICKS = 10;
export const ELECTION_TIMEOUT_MS = TICK_MS * ELECTION_TICKS;
const COMPACT_EVERY_ENTRIES = 24;
/** A normal seed runs ~30k events; far more means a message storm (livelock). */
const MAX_EVENTS_PER_SEED = 400_000;

export interface SimOptions {
  readonly seed: number;
  readonly canary?: RaftCanary;
  readonly verbose?: boolean;
  readonly safetyPhaseMs?: number;
  readonly livenessPhaseMs?: number;
}

export interface SimResult {
  readonly seed: number;
  readonly ok: boolean;
  readonly failures: readonly string[];
  readonly traceHash: string;
  readonly stats: {
    readonly messagesDelivered: number;
    readonly historyOps: number;
    readonly committedEntries: number;
    readonly linearizability: 'ok' | 'violation' | 'inconclusive';
    readonly events: number;
  };
}

export class Simulation {
  readonly queue = new EventQueue(MAX_EVENTS_PER_SEED);
  readonly prng: SeededPrng;
  readonly network: SimNetwork;
  readonly nodes = new Map<NodeId, SimNode>();
  readonly checker = new SafetyChecker();
  readonly history: HistoryOp[] = [];
  readonly clients: SimClient[] = [];
  readonly failures: string[] = [];
  private readonly trace: Hash = createHash('sha256');
  private nextCoreSeed: number;
  /** Every (node, term) in which a node was seen leading, for the failover measurement. */
  leaderSightings: Array<{ id: NodeId; term: number; atMs: number }> = [];

  constructor(private readonly options: SimOptions, layout: { voters: number; spares: number } | null = null) {
    this.prng = new SeededPrng(options.seed);
    this.nextCoreSeed = options.seed * 1000;
    this.network = new SimNetwork(this.queue, this.prng, (m) => this.deliver(m));
    const universe = layout === null ? 3 + this.prng.nextInt(3) : layout.voters + layout.spares;
    const voterCount = layout === null ? 3 + this.prng.nextInt(universe - 2) : layout.voters;
    const ids = Array.from({ length: universe }, (_, i) => `n${i + 1}`);
    const voters = ids.slice(0, voterCount);
    const logger = pino({ level: 'silent' });
    for (const id of ids) {
      // Skewed timers: each server's clock runs up to ±25% off.
      const tickIntervalMs = TICK_MS * (0.75 + this.prng.nextFloat() * 0.5);
      const storage = new SimStorage(voters.includes(id) ? bootstrapState(voters) : emptyState());
      this.nodes.set(id, new SimNode(id, storage, tickIntervalMs, this.raftConfig(id), logger));
    }
    this.record(`layout voters=${voters.join(',')} universe=${ids.join(',')}`);
  }

  private raftConfig(id: NodeId): RaftConfig {
    return {
      ...DEFAULT_RAFT_LIMITS,
      id,
      electionTicks: ELECTION_TICKS,
      heartbeatTicks: 2,
      // Small limits so flow control, batching and chunking are exercised.
      maxMessageBytes: 400,
      maxInflightMessages: 4,
      maxUncommittedBytes: 16 * 1024,
      maxSnapshotChunkBytes: 96,
      maxSnapshotBytes: 1024 * 1024,
      maxCommittedBytesPerReady: 600,
      maxPendingReads: 64,
      ...(this.options.canary === undefined ? {} : { canary: this.options.canary }),
    };
  }

  record(line: string): void {
    this.trace.update(`${this.queue.nowMs.toFixed(3)} ${line}\n`);
    if (this.options.verbose === true) process.stdout.write(`[${this.queue.nowMs.toFixed(1)}ms] ${line}\n`);
  }

  // ---- server lifecycle ----------------------------------------------------

  startNode(node: SimNode): void {
    node.start(this.nextCoreSeed++);
    this.record(`start ${node.id}`);
    const incarnation = node.incarnation;
    const tick = (): void => {
      if (node.incarnation !== incarnation || node.core === null) return;
      node.core.tick();
      this.scheduleReady(node);
      this.queue.schedule(node.tickIntervalMs, tick);
    };
    this.queue.schedule(this.prng.nextFloat() * node.tickIntervalMs, tick);
    this.scheduleReady(node);
  }

  crashNode(node: SimNode): void {
    node.crash();
    this.record(`crash ${node.id}`);
  }

  private deliver(message: Message): void {
    const node = this.nodes.get(message.to);
    if (node === undefined || node.core === null) return;
    this.record(`deliver ${message.type} ${message.from}->${message.to} t${message.term}`);
    node.core.step(message);
    this.scheduleReady(node);
  }

  scheduleReady(node: SimNode): void {
    if (node.readyScheduled || node.readyOutstanding) return;
    node.readyScheduled = true;
    const incarnation = node.incarnation;
    this.queue.schedule(0.05, () => {
      if (node.incarnation !== incarnation) return;
      node.readyScheduled = false;
      this.takeReady(node);
    });
  }

  /** Ready loop step 0: take the Ready; persistence completes after a simulated disk latency. */
  private takeReady(node: SimNode): void {
    const core = node.core;
    if (core === null || !core.hasReady()) return;
    const ready = core.ready();
    node.readyOutstanding = true;
    if (ready.softState !== undefined) {
      const { role, term, leaderId } = ready.softState;
      this.record(`${node.id} ${role} term=${term} leader=${String(leaderId)}`);
      if (role === 'leader') {
        const status = core.status();
        this.leaderSightings.push({ id: node.id, term, atMs: this.queue.nowMs });
        this.checker.onLeader(node.id, term, { term: (i) => core.entryTerm(i), firstIndex: status.firstIndex }, this.queue.nowMs);
      }
    }
    const incarnation = node.incarnation;
    const diskMs = 0.2 + this.prng.nextFloat() * 1.5;
    // A crash before this fires loses the whole Ready: nothing persisted, nothing sent.
    this.queue.schedule(diskMs, () => {
      if (node.incarnation === incarnation) this.completeReady(node, ready);
    });
  }

  /** Ready loop steps 1–4: persist, send, apply, advance. */
  private completeReady(node: SimNode, ready: Ready): void {
    const core = node.core;
    if (core === null) return;
    node.storage.persist(ready);
    for (const message of ready.messages) this.network.send(message);
    if (ready.snapshot !== undefined) {
      this.record(`${node.id} restore snapshot @${ready.snapshot.metadata.index}`);
      node.restoreSnapshot(ready.snapshot);
    }
    for (const entry of ready.committedEntries) {
      if (entry.index <= node.kv.appliedIndex) continue;
      this.checker.onApply(node.id, entry, this.queue.nowMs);
      node.apply(entry);
    }
    node.acceptReadStates(ready.readStates);
    node.serveReads();
    core.advance(ready);
    node.readyOutstanding = false;
    this.maybeCompact(node);
    this.scheduleReady(node);
  }

  /** §7: snapshot the state machine every so many applied entries, keeping a few for slow followers. */
  private maybeCompact(node: SimNode): void {
    const core = node.core;
    if (core === null) return;
    const status = core.status();
    const applied = node.kv.appliedIndex;
    if (applied - (status.firstIndex - 1) < COMPACT_EVERY_ENTRIES) return;
    const snapshot = core.compact(applied, node.kv.serialize());
    node.storage.saveCompaction(snapshot);
    this.record(`${node.id} compact @${applied}`);
  }

  // ---- clients ---------------------------------------------------------------

  private clientTransport() {
    return {
      serverIds: (): NodeId[] => [...this.nodes.keys()],
      request: (clientId: number, to: NodeId, op: ClientOp, reply: (r: Parameters<ReplyFn>[0]) => void): void => {
        this.queue.schedule(0.5 + this.prng.nextFloat() * 2, () => {
          const node = this.nodes.get(to);
          if (node === undefined || node.core === null) return;
          const incarnation = node.incarnation;
          const delayedReply: ReplyFn = (r) =>
            this.queue.schedule(0.5 + this.prng.nextFloat() * 2, () => {
              if (node.incarnation === incarnation) reply(r);
            });
          this.record(`client c${clientId} ${op.kind} ${op.key} -> ${to}`);
          if (op.kind === 'get') node.handleRead(op.key, Buffer.from(op.opId), delayedReply);
          else if (op.kind === 'put') node.handleWrite({ op: 'put', opId: op.opId, key: op.key, value: op.value }, delayedReply);
          else node.handleWrite({ op: 'cas', opId: op.opId, key: op.key, expected: op.expected, value: op.value }, delayedReply);
          this.scheduleReady(node);
        });
      },
    };
  }

  startClients(count: number): void {
    const transport = this.clientTransport();
    for (let i = 0; i < count; i++) {
      const client = new SimClient(i, this.queue, this.prng, transport, this.history, 3 * ELECTION_TIMEOUT_MS);
      this.clients.push(client);
      client.start();
    }
  }

  // ---- phases -----------------------------------------------------------------

  run(): SimResult {
    const safetyPhaseMs = this.options.safetyPhaseMs ?? 6000;
    const livenessPhaseMs = this.options.livenessPhaseMs ?? 4000;
    for (const node of this.nodes.values()) this.startNode(node);
    this.startClients(3);
    const nemesis = new Nemesis(this);
    nemesis.start(safetyPhaseMs);
    this.queue.runUntil(safetyPhaseMs);
    this.checkLogMatching();

    // Liveness phase: no faults; every crashed server restarts; the cluster must converge.
    nemesis.stop();
    this.network.heal();
    this.network.faults = { ...CALM_NETWORK };
    this.record('liveness phase: healed');
    for (const node of this.nodes.values()) if (node.core === null) this.startNode(node);
    const writesBefore = this.clients.reduce((sum, c) => sum + c.succeededWrites, 0);
    const stopClientsAtMs = safetyPhaseMs + livenessPhaseMs / 2;
    this.queue.schedule(livenessPhaseMs / 2, () => {
      for (const client of this.clients) client.running = false;
    });
    const deadlineMs = safetyPhaseMs + livenessPhaseMs;
    let converged = false;
    while (this.queue.nowMs < deadlineMs && !converged && !this.queue.budgetExhausted()) {
      this.queue.runUntil(this.queue.nowMs + 20);
      converged = this.queue.nowMs > stopClientsAtMs && this.convergenceProblem() === null;
    }
    if (!converged) this.failures.push(`liveness: did not converge: ${this.convergenceProblem() ?? 'clients still running'}`);
    const writesAfter = this.clients.reduce((sum, c) => sum + c.succeededWrites, 0);
    if (writesAfter === writesBefore) this.failures.push('liveness: no write succeeded after the faults stopped');
    return this.finish();
  }

  /** Null once: one leader, every member alive with identical applied state, no client waiting. */
  convergenceProblem(): string | null {
    const leaders = [...this.nodes.values()].filter((n) => n.core?.status().role === 'leader');
    const leader = leaders[0];
    if (leaders.length !== 1 || leader?.core == null) return `${leaders.length} leaders`;
    const status = leader.core.status();
    if (status.leadershipTransferTarget !== null) return 'transfer in progress';
    if (this.clients.some((c) => c.busy())) return 'client operations outstanding';
    for (const id of [...status.confState.voters, ...status.confState.learners]) {
      const node = this.nodes.get(id);
      const core = node?.core;
      if (node === undefined || core == null) return `member ${id} down`;
      const s = core.status();
      if (s.commitIndex !== status.lastIndex || node.kv.appliedIndex !== status.lastIndex) {
        return `member ${id} at commit ${s.commitIndex}/applied ${node.kv.appliedIndex}, leader last ${status.lastIndex}`;
      }
      if (node.kv.fingerprint() !== leader.kv.fingerprint()) return `member ${id} state differs from leader`;
      if (node.readyOutstanding || core.hasReady()) return `member ${id} busy`;
    }
    return null;
  }

  private checkLogMatching(): void {
    this.checker.checkLogMatching(
      [...this.nodes.values()].map((n) => ({
        id: n.id,
        firstIndex: n.storage.baseIndex() + 1,
        lastIndex: n.storage.lastIndex(),
        entry: (i: number) => n.storage.entryAt(i),
      })),
    );
  }

  private finish(): SimResult {
    this.checkLogMatching();
    const lin = checkKvHistory(this.history);
    if (lin !== null && lin.outcome === 'violation') this.failures.push(`linearizability: history of key ${lin.key} is not linearizable`);
    if (this.queue.budgetExhausted()) this.failures.push(`liveness: event budget of ${MAX_EVENTS_PER_SEED} exhausted (message storm?)`);
    const failures = [...this.checker.violations, ...this.failures];
    return {
      seed: this.options.seed,
      ok: failures.length === 0,
      failures,
      traceHash: this.trace.digest('hex'),
      stats: {
        messagesDelivered: this.network.delivered,
        historyOps: this.history.length,
        committedEntries: this.checker.committedCount(),
        linearizability: lin === null ? 'ok' : lin.outcome,
        events: this.queue.eventsRun,
      },
    };
  }
}

export function runSeed(options: SimOptions): SimResult {
  return new Simulation(options).run();
}
