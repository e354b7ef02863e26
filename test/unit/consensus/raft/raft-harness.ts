/**
 * A tiny hand-driven network for scripted Raft scenarios: each node has a
 * RaftCore and a SimStorage; messages queue until deliver() moves them, and
 * links can be cut. Nothing happens unless the test says so.
 */
import { pino } from 'pino';
import type { Entry, Message, NodeId, RaftConfig, RaftStorageState, ReadState } from '../../../../consensus/raft/index.js';
import { SeededPrng } from '../../../../common/prng.js';
import { bootstrapState, DEFAULT_RAFT_LIMITS, RaftCore } from '../../../../consensus/raft/index.js';
import { SimStorage } from '../../../sim/sim-storage.js';

export interface HarnessNode {
  readonly id: NodeId;
  core: RaftCore;
  storage: SimStorage;
  applied: Entry[];
  readStates: ReadState[];
}

const silent = pino({ level: 'silent' });

export function testConfig(id: NodeId, overrides: Partial<RaftConfig> = {}): RaftConfig {
  return { ...DEFAULT_RAFT_LIMITS, id, electionTicks: 10, heartbeatTicks: 1, ...overrides };
}

export class Harness {
  readonly nodes = new Map<NodeId, HarnessNode>();
  readonly inFlight: Message[] = [];
  /** Directed links that drop messages: "from->to". */
  readonly cut = new Set<string>();
  private seed = 1;

  constructor(
    ids: readonly NodeId[],
    private readonly overrides: Partial<RaftConfig> = {},
    initial: (id: NodeId) => RaftStorageState = () => bootstrapState(ids),
  ) {
    for (const id of ids) this.addNode(id, initial(id));
  }

  addNode(id: NodeId, state: RaftStorageState): HarnessNode {
    const storage = new SimStorage(state);
    const node: HarnessNode = { id, storage, core: this.makeCore(id, storage), applied: [], readStates: [] };
    this.nodes.set(id, node);
    return node;
  }

  private makeCore(id: NodeId, storage: SimStorage): RaftCore {
    return new RaftCore(
      { config: testConfig(id, this.overrides), storage: storage.state() },
      { prng: new SeededPrng(this.seed++), logger: silent },
    );
  }

  /** Crash and restart from storage: memory (unpersisted entries, applied list) is lost. */
  restart(id: NodeId): void {
    const node = this.node(id);
    node.core = this.makeCore(id, node.storage);
    node.applied = [];
    node.readStates = [];
  }

  node(id: NodeId): HarnessNode {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  core(id: NodeId): RaftCore {
    return this.node(id).core;
  }

  /** Runs every node's Ready loop once: persist, queue messages, apply. */
  processReadies(): boolean {
    let any = false;
    for (const node of this.nodes.values()) {
      while (node.core.hasReady()) {
        any = true;
        const ready = node.core.ready();
        node.storage.persist(ready);
        if (ready.snapshot !== undefined) node.applied = [];
        for (const message of ready.messages) this.inFlight.push(message);
        node.applied.push(...ready.committedEntries);
        node.readStates.push(...ready.readStates);
        node.core.advance(ready);
      }
    }
    return any;
  }

  /** Delivers queued messages (optionally only those matching `filter`) until quiet. */
  deliver(filter: (m: Message) => boolean = () => true, maxRounds = 1000): void {
    for (let round = 0; round < maxRounds; round++) {
      this.processReadies();
      const batch = this.inFlight.splice(0, this.inFlight.length);
      if (batch.length === 0) return;
      for (const message of batch) {
        if (!filter(message)) continue;
        if (this.cut.has(`${message.from}->${message.to}`)) continue;
        this.nodes.get(message.to)?.core.step(message);
      }
    }
    throw new Error('harness: network did not quiesce');
  }

  tick(id: NodeId, times = 1): void {
    for (let i = 0; i < times; i++) this.core(id).tick();
  }

  /** Ticks `id` past its election timeout (max 2*electionTicks) and lets the election run. */
  campaign(id: NodeId): void {
    const electionTicks = testConfig(id, this.overrides).electionTicks;
    this.tick(id, 2 * electionTicks);
    this.deliver();
  }

  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) {
      if (other === id) continue;
      this.cut.add(`${id}->${other}`);
      this.cut.add(`${other}->${id}`);
    }
  }

  heal(): void {
    this.cut.clear();
  }

  leaders(): NodeId[] {
    return [...this.nodes.values()].filter((n) => n.core.status().role === 'leader').map((n) => n.id);
  }

  appliedData(id: NodeId): string[] {
    return this.node(id).applied.filter((e) => e.type === 'normal' && e.data.length > 0).map((e) => e.data.toString());
  }
}
