/**
 * An in-process cluster of RaftNodes over real loopback TCP transports, each
 * with its own LevelDB, for the runner tests. Nodes can be stopped and
 * restarted on the same data dir and port.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import pino from 'pino';
import { raftMessageCodec } from '../../../../consensus/proto/raft-message-codec.js';
import { SeededPrng } from '../../../../common/prng.js';
import type { Message } from '../../../../consensus/raft/types.js';
import { RaftNode } from '../../../../consensus/node/raft-node.js';
import { DEFAULT_NODE_OPTIONS } from '../../../../consensus/node/raft-node-options.js';
import { DEFAULT_TRANSPORT_LIMITS, TcpTransport } from '../../../../consensus/transport/tcp-transport.js';
import type { PeerAddress } from '../../../../consensus/transport/transport-types.js';
import { KvStateMachine, type KvResult } from '../../../integration/fixtures/kv-state-machine.js';

export const TICK_MS = 20;

export interface Member {
  readonly id: string;
  readonly dir: string;
  address: PeerAddress;
  node: RaftNode<KvResult> | null;
  transport: TcpTransport<Message> | null;
  kv: KvStateMachine;
  db: Level<string, Buffer> | null;
}

export interface NodeTweaks {
  readonly snapshotEveryEntries?: number;
  readonly bootstrap?: boolean;
  readonly signal?: AbortSignal;
}

export class ClusterHarness {
  readonly members = new Map<string, Member>();
  readonly #root: string;
  readonly #voters: string[];

  private constructor(root: string, voters: string[]) {
    this.#root = root;
    this.#voters = voters;
  }

  static async create(ids: string[]): Promise<ClusterHarness> {
    const harness = new ClusterHarness(await mkdtemp(join(tmpdir(), 'plinth-raft-node-')), ids);
    for (const id of ids) await harness.prepare(id);
    return harness;
  }

  /** Reserve a member (data dir and a listening transport) without starting its node. */
  async prepare(id: string): Promise<Member> {
    const member: Member = { id, dir: join(this.#root, id), address: { host: '127.0.0.1', port: 0 }, node: null, transport: null, kv: new KvStateMachine(), db: null };
    this.members.set(id, member);
    member.transport = this.#makeTransport(id, member.address);
    member.address = await member.transport.listen();
    return member;
  }

  addresses(): Map<string, PeerAddress> {
    return new Map([...this.members.values()].map((m) => [m.id, m.address]));
  }

  async start(id: string, tweaks: NodeTweaks = {}): Promise<RaftNode<KvResult>> {
    const member = this.#member(id);
    if (member.transport === null) {
      member.transport = this.#makeTransport(id, member.address);
      await member.transport.listen();
    }
    member.kv = new KvStateMachine();
    member.db = new Level<string, Buffer>(member.dir, { valueEncoding: 'buffer' });
    await member.db.open();
    const peers = this.addresses();
    peers.delete(id);
    member.node = await RaftNode.start<KvResult>(
      {
        ...DEFAULT_NODE_OPTIONS,
        nodeId: id,
        ...(tweaks.bootstrap === false ? {} : { bootstrapVoters: this.#voters }),
        peers,
        selfAddress: member.address,
        tickMs: TICK_MS,
        proposalTimeoutMs: 3000,
        snapshotEveryEntries: tweaks.snapshotEveryEntries ?? 10_000,
        ...(tweaks.signal === undefined ? {} : { signal: tweaks.signal }),
      },
      {
        logger: pino({ level: process.env['RAFT_TEST_LOG'] ?? 'silent' }).child({ node: id }),
        db: member.db.sublevel<string, Buffer>('raft', { valueEncoding: 'buffer' }),
        transport: member.transport,
        stateMachine: member.kv,
        prng: new SeededPrng(hash(id)),
      },
    );
    return member.node;
  }

  /** Stop `id` and start it again with `signal` wired to its shutdown. */
  async restartWithSignal(id: string, signal: AbortSignal): Promise<RaftNode<KvResult>> {
    await this.stop(id);
    return this.start(id, { signal });
  }

  async stop(id: string): Promise<void> {
    const member = this.#member(id);
    await member.node?.stop();
    await member.db?.close();
    member.node = null;
    member.transport = null;
    member.db = null;
  }

  node(id: string): RaftNode<KvResult> {
    const node = this.#member(id).node;
    if (node === null) throw new Error(`node ${id} is not running`);
    return node;
  }

  running(): RaftNode<KvResult>[] {
    return [...this.members.values()].flatMap((m) => (m.node === null ? [] : [m.node]));
  }

  /** The single leader among running nodes that all running nodes agree on, or null. */
  leader(): RaftNode<KvResult> | null {
    const leaders = this.running().filter((n) => n.role === 'leader');
    return leaders.length === 1 ? (leaders[0] ?? null) : null;
  }

  async waitForLeader(timeoutMs = 5000): Promise<RaftNode<KvResult>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const leader = this.leader();
      if (leader !== null) return leader;
      if (Date.now() > deadline) throw new Error('no leader elected in time');
      await new Promise((resolve) => setTimeout(resolve, TICK_MS));
    }
  }

  async close(): Promise<void> {
    for (const id of this.members.keys()) await this.stop(id);
    for (const member of this.members.values()) await member.transport?.close();
    await rm(this.#root, { recursive: true, force: true });
  }

  #member(id: string): Member {
    const member = this.members.get(id);
    if (member === undefined) throw new Error(`unknown member ${id}`);
    return member;
  }

  #makeTransport(id: string, listen: PeerAddress): TcpTransport<Message> {
    const prng = new SeededPrng(hash(id) + 7);
    return new TcpTransport<Message>(
      { ...DEFAULT_TRANSPORT_LIMITS, nodeId: id, listen, secret: Buffer.from('harness-secret'), backoff: { baseDelayMs: 10, maxDelayMs: 200 } },
      { logger: pino({ level: 'silent' }), codec: raftMessageCodec, random: () => prng.nextFloat() },
    );
  }
}

export async function waitFor(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function hash(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return h >>> 0;
}
