/**
 * The soak's nemesis: a seeded schedule of faults, one at a time, each held
 * for a while and then healed (the dead restarted in place, the frozen
 * thawed, failpoints disarmed, links reconnected), and everything healed
 * when the fault phase ends. The schedule (kinds, targets among the
 * candidates, timings, failpoint specs) comes from the seed; the cluster's
 * own timing does not, so a replay repeats the schedule, not every
 * interleaving.
 *
 * One fault at a time keeps a majority and an in-sync replica alive with 3
 * nodes; faults still pile up in effect (a node killed while another is
 * still being rebuilt), which is the point.
 */
import type { Logger } from 'pino';
import { SeededPrng } from '../../common/prng.js';
import type { SoakCluster } from './soak-cluster.js';

export type FaultKind = 'kill' | 'stop' | 'partition' | 'failpoint' | 'power-cut' | 'disk' | 'membership';
export const FAULT_KINDS: readonly FaultKind[] = ['kill', 'stop', 'partition', 'failpoint', 'power-cut', 'disk', 'membership'];

export interface FaultRecord {
  readonly kind: FaultKind;
  readonly node: string;
  detail: string;
  readonly atMs: number;
  readonly holdMs: number;
  /** What happened: "restarted", "thawed", "crashed, restarted", "disarmed", … */
  outcome: string;
}

/** Network faults, where the run has them (network namespaces); the loopback soak has none. */
export interface NetworkFaults {
  /** Silently drop everything between `node` and each of `peers` (and the workload's client when `client`). */
  partition(node: string, peers: readonly string[], client: boolean): Promise<void>;
  heal(): Promise<void>;
}

export interface NemesisOptions {
  readonly seed: number;
  readonly kinds: readonly FaultKind[];
  /** Quiet time before each fault, and how long a fault is held: [min, max) ms. */
  readonly quietMs: readonly [number, number];
  readonly holdMs: readonly [number, number];
}

export interface NemesisModules {
  readonly cluster: SoakCluster;
  /** Volumes whose owner is a favoured target (half the faults hit an owner). */
  readonly volumes: readonly string[];
  readonly logger: Logger;
  readonly network?: NetworkFaults;
}

/** `%N` is replaced by a seeded count (skip=…, so the point fires at a random later hit). */
const FAILPOINT_SPECS = [
  'replica.write.before-ack=crash:skip=%N:times=1',
  'replica.flush.before-ack=crash:skip=%N:times=1',
  'controller.write.after-fanout=crash:skip=%N:times=1',
  'controller.fault.before-commit=crash:times=1',
  'rebuild.mid-copy=crash:skip=%N:times=1',
  'raft.append.before-persist=crash:skip=%N:times=1',
  'raft.apply.before=stall(2000):times=1',
  'replica.write.before-ack=stall(3000):skip=%N:times=2',
  'pool.write=error(EIO):skip=%N:times=1',
  'nbd.reply.before-send=error:skip=%N:times=1',
];
const POWER_CUT_SPECS = [
  'disk.sync=power-cut:skip=%N:times=1',
  'replica.write.before-ack=power-cut:skip=%N:times=1',
  'controller.write.after-fanout=power-cut:skip=%N:times=1',
  'pool.flush.after-data-sync=power-cut:times=1',
];
const DISK_SPECS = [
  'disk.write=error(EIO):skip=%N:times=2',
  'disk.read=error(EIO):skip=%N:times=2',
  'disk.write=error(ENOSPC):skip=%N:times=1',
  'disk.sync=stall(3000):times=1',
  'disk.sync=error(EIO):times=1',
];
const MAX_SKIP = 200;
/** A membership change waits this long for the drain (a full rebuild of each moved replica). */
const DRAIN_TIMEOUT_MS = 60_000;

export class Nemesis {
  readonly faults: FaultRecord[] = [];
  /** Faults that failed to inject or heal (reported, not fatal). */
  readonly errors: string[] = [];
  readonly #options: NemesisOptions;
  readonly #modules: NemesisModules;
  readonly #rng: SeededPrng;
  readonly #startedAt = Date.now();

  constructor(options: NemesisOptions, modules: NemesisModules) {
    if (options.kinds.length === 0) throw new RangeError('the nemesis needs at least one fault kind');
    if (options.kinds.includes('partition') && modules.network === undefined) throw new RangeError('partition faults need network namespaces');
    this.#options = options;
    this.#modules = modules;
    this.#rng = new SeededPrng(options.seed);
  }

  /** Inject faults until `endAt` (epoch ms), then heal everything. */
  async run(endAt: number): Promise<void> {
    while (Date.now() < endAt) {
      await sleepUntil(Math.min(endAt, Date.now() + this.#between(this.#options.quietMs)));
      // Drawn every round in the same order, so the schedule depends on the seed alone.
      const kind = this.#options.kinds[this.#rng.nextInt(this.#options.kinds.length)] ?? 'kill';
      const holdMs = this.#between(this.#options.holdMs);
      const targetRoll = this.#rng.nextInt(1_000_000);
      const specRoll = this.#rng.nextInt(1_000_000);
      const skip = this.#rng.nextInt(MAX_SKIP);
      if (Date.now() >= endAt) break;
      const node = await this.#pickTarget(targetRoll);
      if (node === undefined) continue;
      try {
        await this.#inject(kind, node, holdMs, specRoll, skip, endAt);
      } catch (err) {
        // A fault that could not be injected or healed (an API call timed out under load) is logged and
        // recorded; the heal at the end restores every node anyway.
        this.errors.push(`${kind} on ${node}: ${err instanceof Error ? err.message : String(err)}`);
        this.#modules.logger.warn({ err, kind, node }, 'fault injection failed');
      }
    }
    await this.#modules.network?.heal();
    await this.#modules.cluster.healAll();
  }

  async #inject(kind: FaultKind, node: string, holdMs: number, specRoll: number, skip: number, endAt: number): Promise<void> {
    const { cluster, logger } = this.#modules;
    const record: FaultRecord = { kind, node, detail: '', atMs: Date.now() - this.#startedAt, holdMs, outcome: 'injected' };
    const until = Math.min(endAt, Date.now() + holdMs);
    switch (kind) {
      case 'kill':
        await cluster.kill(node);
        break;
      case 'stop':
        cluster.freeze(node);
        break;
      case 'partition': {
        // Cut from every other node, also from the client, or from one peer only (specRoll picks).
        const others = cluster.ids.filter((id) => id !== node);
        const mode = specRoll % 3;
        const peers = mode === 2 ? [others[(specRoll >> 2) % others.length] ?? ''] : others;
        record.detail = `${node} from ${peers.join(',')}${mode === 1 ? ' and the client' : ''}`;
        await this.#modules.network?.partition(node, peers, mode === 1);
        break;
      }
      case 'failpoint':
      case 'power-cut':
      case 'disk': {
        const specs = kind === 'failpoint' ? FAILPOINT_SPECS : kind === 'power-cut' ? POWER_CUT_SPECS : DISK_SPECS;
        const spec = (specs[specRoll % specs.length] ?? '').replace('%N', String(skip));
        record.detail = spec;
        if (!(await cluster.arm(node, spec))) record.outcome = 'not armed';
        break;
      }
      case 'membership': {
        // Replace a node that owns nothing (a removed owner would just fail over; the replica move is the point).
        const owners = await this.#owners();
        const candidates = cluster.upIds().filter((id) => !owners.has(id));
        const victim = candidates.includes(node) ? node : candidates[specRoll % Math.max(1, candidates.length)];
        if (victim === undefined) {
          record.outcome = 'skipped: every live node owns a volume';
          break;
        }
        record.detail = victim;
        record.outcome = await cluster.replaceMember(victim, DRAIN_TIMEOUT_MS);
        break;
      }
    }
    this.faults.push(record);
    logger.info({ fault: record }, 'fault injected');
    await sleepUntil(until);
    // A replaced member is gone: nothing of it to heal.
    if (kind !== 'membership') record.outcome = await this.#heal(kind, node);
    logger.info({ fault: record }, 'fault healed');
  }

  async #heal(kind: FaultKind, node: string): Promise<string> {
    const { cluster } = this.#modules;
    const outcomes: string[] = [];
    if (kind === 'partition') {
      await this.#modules.network?.heal();
      outcomes.push('reconnected');
    }
    if (cluster.condition(node) === 'stopped') {
      cluster.thaw(node);
      outcomes.push('thawed');
    }
    if (cluster.condition(node) === 'dead') {
      await cluster.restart(node);
      outcomes.push(kind === 'kill' ? 'restarted' : 'crashed, restarted');
    } else if (kind === 'failpoint' || kind === 'power-cut' || kind === 'disk') {
      await cluster.disarm(node);
      outcomes.push('disarmed');
    }
    return outcomes.join(', ');
  }

  /** Half the time the owner of one of the volumes (failover), else any live node. */
  async #pickTarget(roll: number): Promise<string | undefined> {
    const { cluster, volumes } = this.#modules;
    const up = cluster.upIds();
    if (roll % 2 === 0 && volumes.length > 0) {
      const name = volumes[(roll >> 1) % volumes.length] ?? '';
      try {
        const owner = (await cluster.volume(name)).attachedTo;
        if (owner !== null && up.includes(owner)) return owner;
      } catch (err) {
        this.#modules.logger.debug({ err, volume: name }, 'owner unknown; picking any live node');
      }
    }
    return up[(roll >> 1) % Math.max(1, up.length)];
  }

  async #owners(): Promise<Set<string>> {
    const owners = new Set<string>();
    for (const name of this.#modules.volumes) {
      const owner = (await this.#modules.cluster.volume(name)).attachedTo;
      if (owner !== null) owners.add(owner);
    }
    return owners;
  }

  #between([min, max]: readonly [number, number]): number {
    return min + this.#rng.nextInt(Math.max(1, max - min));
  }
}

function sleepUntil(epochMs: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, epochMs - Date.now())));
}

/** Fault counts by kind (and by detail for armed points), for the summary. */
export function countFaults(faults: readonly FaultRecord[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const fault of faults) counts[fault.kind] = (counts[fault.kind] ?? 0) + 1;
  return counts;
}
