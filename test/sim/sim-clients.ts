/**
 * Simulated clients of the KV store: each runs one operation at a time
 * (put/get/cas on a few keys), picks the server it believes leads, and
 * records invoke/return times for the linearizability checker. A timed-out
 * write is ambiguous (returns at +Infinity); a timed-out or refused read,
 * and a refused write, had no effect and leave the history.
 */
import type { Prng } from '../../common/prng.js';
import type { NodeId } from '../../consensus/raft/index.js';
import type { EventQueue } from './event-queue.js';
import type { HistoryOp } from './linearizability.js';
import type { ServerReply } from './sim-node.js';

export interface ClientTransport {
  /** Delivers a request to a server after some delay; the server replies through `reply` (or never). */
  request(clientId: number, to: NodeId, op: ClientOp, reply: (r: ServerReply) => void): void;
  serverIds(): readonly NodeId[];
}

export type ClientOp =
  | { readonly kind: 'put'; readonly opId: string; readonly key: string; readonly value: string }
  | { readonly kind: 'get'; readonly opId: string; readonly key: string }
  | { readonly kind: 'cas'; readonly opId: string; readonly key: string; readonly expected: string | null; readonly value: string };

const KEYS = ['x', 'y', 'z'];

export class SimClient {
  private seq = 0;
  private leaderHint: NodeId | null = null;
  private lastSeen = new Map<string, string | null>();
  private current: { op: ClientOp; invokeMs: number; settled: boolean } | null = null;
  running = true;
  completed = 0;
  succeededWrites = 0;

  constructor(
    readonly id: number,
    private readonly queue: EventQueue,
    private readonly prng: Prng,
    private readonly transport: ClientTransport,
    private readonly history: HistoryOp[],
    private readonly timeoutMs: number,
  ) {}

  start(): void {
    this.queue.schedule(this.thinkMs(), () => this.issue());
  }

  busy(): boolean {
    return this.current !== null && !this.current.settled;
  }

  private thinkMs(): number {
    return 2 + this.prng.nextFloat() * 20;
  }

  private issue(): void {
    if (!this.running) return;
    const op = this.nextOp();
    const servers = this.transport.serverIds();
    const target = this.leaderHint ?? servers[this.prng.nextInt(servers.length)];
    if (target === undefined) return;
    const current = { op, invokeMs: this.queue.nowMs, settled: false };
    this.current = current;
    this.transport.request(this.id, target, op, (reply) => this.onReply(current, reply, target));
    this.queue.schedule(this.timeoutMs, () => this.onTimeout(current));
  }

  private nextOp(): ClientOp {
    const key = KEYS[this.prng.nextInt(KEYS.length)] ?? 'x';
    const opId = `c${this.id}-${this.seq++}`;
    const roll = this.prng.nextFloat();
    if (roll < 0.4) return { kind: 'get', opId, key };
    if (roll < 0.75) return { kind: 'put', opId, key, value: opId };
    return { kind: 'cas', opId, key, expected: this.lastSeen.get(key) ?? null, value: opId };
  }

  private onReply(current: { op: ClientOp; invokeMs: number; settled: boolean }, reply: ServerReply, target: NodeId): void {
    if (current.settled) return;
    current.settled = true;
    const { op, invokeMs } = current;
    const returnMs = this.queue.nowMs;
    const timing = { key: op.key, clientId: this.id, invokeMs, returnMs };
    if (reply.kind === 'refused') {
      this.leaderHint = reply.leaderHint !== null && reply.leaderHint !== target ? reply.leaderHint : null;
    } else if (reply.kind === 'read-done' && op.kind === 'get') {
      this.leaderHint = target;
      this.lastSeen.set(op.key, reply.value);
      this.history.push({ kind: 'get', output: { value: reply.value }, ...timing });
    } else if (reply.kind === 'write-done' && op.kind !== 'get') {
      this.leaderHint = target;
      this.succeededWrites++;
      if (op.kind === 'put') {
        this.lastSeen.set(op.key, op.value);
        this.history.push({ kind: 'put', value: op.value, output: 'ok', ...timing });
      } else {
        if (reply.ok) this.lastSeen.set(op.key, op.value);
        this.history.push({ kind: 'cas', expected: op.expected, value: op.value, output: { ok: reply.ok }, ...timing });
      }
    }
    this.completed++;
    this.queue.schedule(this.thinkMs(), () => this.issue());
  }

  private onTimeout(current: { op: ClientOp; invokeMs: number; settled: boolean }): void {
    if (current.settled) return;
    current.settled = true;
    this.leaderHint = null;
    const { op, invokeMs } = current;
    const timing = { key: op.key, clientId: this.id, invokeMs, returnMs: Infinity };
    if (op.kind === 'put') this.history.push({ kind: 'put', value: op.value, output: null, ...timing });
    if (op.kind === 'cas') this.history.push({ kind: 'cas', expected: op.expected, value: op.value, output: null, ...timing });
    this.lastSeen.delete(op.key);
    this.queue.schedule(this.thinkMs(), () => this.issue());
  }
}
