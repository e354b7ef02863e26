/**
 * The fault injector of the safety phase: every few tens of milliseconds of
 * virtual time it picks one fault — network weather, crash, restart, a
 * symmetric/asymmetric/bridge partition, heal, a membership change, a
 * leadership transfer. Every choice comes from the seeded PRNG.
 */
import { isPlinthError } from '../../common/plinth-error.js';
import type { NodeId } from '../../consensus/raft/index.js';
import type { SimNode } from './sim-node.js';
import type { Simulation } from './simulator.js';

type Fault = 'weather' | 'crash' | 'crash-leader' | 'restart' | 'split' | 'one-way' | 'bridge' | 'heal' | 'membership' | 'transfer';

const WEIGHTS: ReadonlyArray<[Fault, number]> = [
  ['weather', 3],
  ['crash', 2],
  ['crash-leader', 1],
  ['restart', 4],
  ['split', 2],
  ['one-way', 2],
  ['bridge', 1],
  ['heal', 3],
  ['membership', 3],
  ['transfer', 1],
];

export class Nemesis {
  private active = false;

  constructor(private readonly sim: Simulation) {}

  start(untilMs: number): void {
    this.active = true;
    const next = (): void => {
      if (!this.active || this.sim.queue.nowMs >= untilMs) return;
      this.act(this.pick());
      this.sim.queue.schedule(30 + this.sim.prng.nextFloat() * 170, next);
    };
    this.sim.queue.schedule(100, next);
  }

  stop(): void {
    this.active = false;
  }

  private pick(): Fault {
    const total = WEIGHTS.reduce((sum, [, w]) => sum + w, 0);
    let roll = this.sim.prng.nextFloat() * total;
    for (const [fault, weight] of WEIGHTS) {
      roll -= weight;
      if (roll < 0) return fault;
    }
    return 'heal';
  }

  private choose<T>(items: readonly T[]): T | undefined {
    return items[this.sim.prng.nextInt(items.length)];
  }

  private shuffledIds(): NodeId[] {
    const ids = [...this.sim.nodes.keys()];
    for (let i = ids.length - 1; i > 0; i--) {
      const j = this.sim.prng.nextInt(i + 1);
      [ids[i], ids[j]] = [ids[j] as NodeId, ids[i] as NodeId];
    }
    return ids;
  }

  private leader(): SimNode | undefined {
    return [...this.sim.nodes.values()].find((n) => n.core?.status().role === 'leader');
  }

  private act(fault: Fault): void {
    const sim = this.sim;
    const alive = [...sim.nodes.values()].filter((n) => n.alive);
    const dead = [...sim.nodes.values()].filter((n) => !n.alive);
    switch (fault) {
      case 'weather': {
        const prng = sim.prng;
        sim.network.faults = {
          lossRate: prng.nextFloat() * 0.2,
          duplicateRate: prng.nextFloat() * 0.1,
          minDelayMs: 0.5,
          maxDelayMs: 2 + prng.nextFloat() * 30,
          slowRate: prng.nextFloat() * 0.1,
        };
        sim.record(`nemesis weather loss=${sim.network.faults.lossRate.toFixed(3)}`);
        return;
      }
      case 'crash':
      case 'crash-leader': {
        const victim = fault === 'crash-leader' ? this.leader() : this.choose(alive);
        if (victim === undefined || dead.length >= Math.ceil(sim.nodes.size / 2)) return this.act('restart');
        sim.crashNode(victim);
        return;
      }
      case 'restart': {
        const node = this.choose(dead);
        if (node !== undefined) sim.startNode(node);
        return;
      }
      case 'split': {
        const ids = this.shuffledIds();
        const cut = 1 + sim.prng.nextInt(ids.length - 1);
        sim.network.heal();
        sim.network.split(ids.slice(0, cut), ids.slice(cut));
        sim.record(`nemesis split ${ids.slice(0, cut).join(',')} | ${ids.slice(cut).join(',')}`);
        return;
      }
      case 'one-way': {
        const [from, to] = this.shuffledIds();
        if (from === undefined || to === undefined) return;
        sim.network.cutLink(from, to);
        sim.record(`nemesis cut ${from}->${to}`);
        return;
      }
      case 'bridge': {
        const ids = this.shuffledIds();
        const bridge = ids[0];
        if (bridge === undefined || ids.length < 3) return;
        const rest = ids.slice(1);
        const half = Math.ceil(rest.length / 2);
        sim.network.heal();
        sim.network.bridge(rest.slice(0, half), bridge, rest.slice(half));
        sim.record(`nemesis bridge ${rest.slice(0, half).join(',')} <${bridge}> ${rest.slice(half).join(',')}`);
        return;
      }
      case 'heal':
        sim.network.heal();
        sim.record('nemesis heal');
        return;
      case 'membership':
        this.changeMembership();
        return;
      case 'transfer': {
        const leader = this.leader();
        const target = this.choose(leader?.core?.status().confState.voters ?? []);
        if (leader?.core == null || target === undefined) return;
        this.tryLeader(leader, `transfer to ${target}`, (core) => core.transferLeadership(target));
        return;
      }
    }
  }

  /** One server at a time: promote a learner, or add a non-member as learner, or remove a voter (keeping ≥ 2). */
  private changeMembership(): void {
    const leader = this.leader();
    const core = leader?.core;
    if (leader === undefined || core == null) return;
    const conf = core.status().confState;
    const learner = conf.learners[0];
    const outsiders = [...this.sim.nodes.keys()].filter((id) => !conf.voters.includes(id) && !conf.learners.includes(id));
    if (learner !== undefined) {
      this.tryLeader(leader, `promote ${learner}`, (c) => c.proposeConfChange({ type: 'promote-voter', nodeId: learner }));
    } else if (conf.voters.length > 2 && this.sim.prng.nextFloat() < 0.5) {
      const victim = this.choose(conf.voters);
      if (victim !== undefined) this.tryLeader(leader, `remove ${victim}`, (c) => c.proposeConfChange({ type: 'remove-node', nodeId: victim }));
    } else {
      const joiner = this.choose(outsiders);
      if (joiner !== undefined) this.tryLeader(leader, `add learner ${joiner}`, (c) => c.proposeConfChange({ type: 'add-learner', nodeId: joiner }));
    }
  }

  private tryLeader(leader: SimNode, what: string, action: (core: NonNullable<SimNode['core']>) => void): void {
    const core = leader.core;
    if (core === null) return;
    try {
      action(core);
      this.sim.record(`nemesis ${what} via ${leader.id}`);
      this.sim.scheduleReady(leader);
    } catch (err) {
      if (!isPlinthError(err)) throw err;
      this.sim.record(`nemesis ${what} refused: ${err.code}`);
    }
  }
}
