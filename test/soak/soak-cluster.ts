/**
 * The soak's cluster: 3–5 plinthd on loopback with the test API
 * (failpoints at run time) and, when asked, the power-loss disk layer; the
 * fault primitives the nemesis uses (kill -9, SIGSTOP/SIGCONT, failpoints,
 * restart in place) and the views the workload and the end checks need
 * (owner of a volume, health, convergence). Built on
 * test/integration/fixtures/failpoint-cluster.ts.
 */
import type { Logger } from 'pino';
import { type DaemonProcess, spawnDaemon, type SpawnDaemonOptions, type TeardownHost } from '../helpers/daemon-harness.js';
import { startFailpointMember, TEST_API_ENV, type VolumeInspect } from '../integration/fixtures/failpoint-cluster.js';
import type { NetnsCluster } from '../setup/netns-cluster.js';
import type { SeededPrng } from '../../common/prng.js';

/** `pkill -f "plinthd.js --data-dir /tmp/plinth-soak-"` finds strays of the soak only. */
export const SOAK_DATA_DIR_PREFIX = 'plinth-soak-';

export type NodeCondition = 'up' | 'stopped' | 'dead';

export interface SoakClusterOptions {
  readonly nodeCount: number;
  /** Run every daemon over the power-loss disk layer (needed by the power-cut kind). */
  readonly powerLoss: boolean;
  readonly seed: number;
  readonly logLevel: string;
  /**
   * Run every node in its own network namespace (test/setup/netns-cluster.ts,
   * built with the node ids n1…nN plus a client namespace): partitions
   * become possible. Default: the host's loopback.
   */
  readonly netns?: NetnsCluster;
}

/** How a node's daemon is started and restarted in place: on loopback or in its namespace. */
interface NodeLauncher {
  start(id: string, join: { readonly id: string; readonly daemon: DaemonProcess } | undefined, env: Record<string, string>): Promise<DaemonProcess>;
  restart(id: string, previous: DaemonProcess, env: Record<string, string>): Promise<DaemonProcess>;
}

export interface VolumeDetails extends VolumeInspect {
  readonly name: string;
  readonly sizeBytes: number;
}

interface NodeView {
  readonly id: string;
  readonly state: string;
}

const API_TIMEOUT_MS = 3000;
/**
 * A restarted node replays its Raft log and reopens its pool on a machine
 * the soak keeps busy: it gets longer than startDaemon's 20 s to get ready.
 */
const RESTART_READY_MS = 60_000;

export class SoakCluster {
  readonly #ids: string[];
  #nextIndex: number;
  readonly #options: SoakClusterOptions;
  readonly #logger: Logger;
  readonly #launcher: NodeLauncher;
  readonly #daemons = new Map<string, DaemonProcess>();
  /** Every incarnation of every node, for the logs at the end. */
  readonly incarnations: Array<{ readonly id: string; readonly daemon: DaemonProcess }> = [];
  readonly #stopped = new Set<string>();
  #restarts = 0;

  private constructor(host: TeardownHost, options: SoakClusterOptions, logger: Logger) {
    this.#logger = logger;
    this.#launcher = options.netns === undefined ? loopbackLauncher(host, options.logLevel) : netnsLauncher(host, options.netns, options.logLevel);
    this.#options = options;
    this.#ids = Array.from({ length: options.nodeCount }, (_, i) => `n${i + 1}`);
    this.#nextIndex = options.nodeCount + 1;
  }

  static async start(host: TeardownHost, options: SoakClusterOptions, modules: { readonly logger: Logger }): Promise<SoakCluster> {
    if (options.nodeCount < 3 || options.nodeCount > 5) throw new RangeError(`the soak runs 3 to 5 nodes, not ${options.nodeCount}`);
    const cluster = new SoakCluster(host, options, modules.logger);
    let previous: { id: string; daemon: DaemonProcess } | undefined;
    for (const id of cluster.ids) {
      const daemon = await cluster.#launcher.start(id, previous, cluster.#env(id));
      cluster.#track(id, daemon);
      previous = { id, daemon };
    }
    return cluster;
  }

  /** The current members (a membership fault replaces one with a fresh node). */
  get ids(): readonly string[] {
    return this.#ids;
  }

  /**
   * Membership change, the documented way (docs/operations.md "Drain",
   * "Remove"): join a fresh node with a new id, drain `id` (its replicas
   * move, each rebuilt in full before the old one goes), then remove it and
   * stop its daemon. A drain that does not finish within `drainTimeoutMs`
   * is cancelled and the node kept (the cluster just grew). Loopback only
   * (namespaces are fixed per id).
   */
  async replaceMember(id: string, drainTimeoutMs: number): Promise<string> {
    if (this.#options.netns !== undefined) throw new Error('membership changes run on loopback only');
    const newId = `n${this.#nextIndex++}`;
    const via = this.upIds().find((other) => other !== id);
    if (via === undefined) throw new Error('no live node to join through');
    const daemon = await this.#launcher.start(newId, { id: via, daemon: this.daemon(via) }, this.#env(newId));
    this.#ids.push(newId);
    this.#track(newId, daemon);
    const drain = await this.api('POST', `/v1/nodes/${id}/drain`);
    if (drain.status !== 202) return `${newId} joined; drain of ${id} refused: ${drain.status} ${JSON.stringify(drain.body)}`;
    const started = Date.now();
    while (Date.now() - started < drainTimeoutMs) {
      const nodes = await this.api('GET', '/v1/nodes');
      const row = (nodes.body as { nodes?: Array<NodeView & { drain?: { done: boolean } }> }).nodes?.find((node) => node.id === id);
      if (row?.drain?.done === true) break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    if (Date.now() - started >= drainTimeoutMs) {
      await this.api('DELETE', `/v1/nodes/${id}/drain`);
      return `${newId} joined; drain of ${id} incomplete after ${drainTimeoutMs} ms, cancelled`;
    }
    const removed = await this.#apiVia(this.upIds().filter((other) => other !== id), 'DELETE', `/v1/nodes/${id}`);
    if (removed.status !== 204) return `${newId} joined; ${id} drained, removal refused: ${removed.status} ${JSON.stringify(removed.body)}`;
    await this.daemon(id).kill();
    this.#ids.splice(this.#ids.indexOf(id), 1);
    this.#stopped.delete(id);
    return `${newId} joined, ${id} drained in ${Date.now() - started} ms and removed`;
  }

  daemon(id: string): DaemonProcess {
    const daemon = this.#daemons.get(id);
    if (daemon === undefined) throw new Error(`no soak node ${id}`);
    return daemon;
  }

  condition(id: string): NodeCondition {
    if (this.daemon(id).exitStatus !== null) return 'dead';
    return this.#stopped.has(id) ? 'stopped' : 'up';
  }

  upIds(): string[] {
    return this.ids.filter((id) => this.condition(id) === 'up');
  }

  get restarts(): number {
    return this.#restarts;
  }

  async kill(id: string): Promise<void> {
    this.#stopped.delete(id);
    await this.daemon(id).kill();
  }

  freeze(id: string): void {
    this.daemon(id).signal('SIGSTOP');
    this.#stopped.add(id);
  }

  thaw(id: string): void {
    this.daemon(id).signal('SIGCONT');
    this.#stopped.delete(id);
  }

  /** Restart a dead node in place (same data dir and ports), waiting until ready. */
  async restart(id: string): Promise<void> {
    const previous = this.daemon(id);
    if (previous.exitStatus === null) throw new Error(`restart of ${id}, which is still running`);
    const daemon = await this.#launcher.restart(id, previous, this.#env(id));
    this.#track(id, daemon);
    this.#restarts += 1;
  }

  /** Arm a failpoint spec on a live node; false when the node did not take it (down, frozen, refused). */
  async arm(id: string, spec: string): Promise<boolean> {
    if (this.condition(id) !== 'up') return false;
    const response = await this.daemon(id).api('PUT', '/v1/debug/failpoints', { spec }, { timeoutMs: API_TIMEOUT_MS });
    if (response.status !== 200) throw new Error(`arm ${spec} on ${id}: ${response.status} ${JSON.stringify(response.body)}`);
    return true;
  }

  async disarm(id: string): Promise<void> {
    if (this.condition(id) !== 'up') return;
    const response = await this.daemon(id).api('DELETE', '/v1/debug/failpoints', undefined, { timeoutMs: API_TIMEOUT_MS });
    if (response.status !== 200) throw new Error(`disarm on ${id}: ${response.status} ${JSON.stringify(response.body)}`);
  }

  /** Thaw the frozen, restart the dead, disarm every failpoint: the end of all faults. */
  async healAll(): Promise<void> {
    for (const id of [...this.#stopped]) this.thaw(id);
    for (const id of this.ids) if (this.condition(id) === 'dead') await this.restart(id);
    for (const id of this.ids) await this.disarm(id);
  }

  /** An authenticated API call through the first live node that answers. */
  async api(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
    return this.#apiVia(this.upIds(), method, path, body);
  }

  async #apiVia(ids: readonly string[], method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
    let lastError: unknown = new Error('no live node');
    for (const id of ids) {
      try {
        return await this.daemon(id).api(method, path, body, { timeoutMs: API_TIMEOUT_MS });
      } catch (err) {
        lastError = err;
        this.#logger.debug({ err, node: id, path }, 'API call failed; trying the next node');
      }
    }
    throw lastError instanceof Error ? lastError : new Error(String(lastError));
  }

  async volume(name: string): Promise<VolumeDetails> {
    const response = await this.api('GET', `/v1/volumes/${name}`);
    if (response.status !== 200) throw new Error(`inspect ${name}: ${response.status} ${JSON.stringify(response.body)}`);
    return response.body as VolumeDetails;
  }

  async createVolume(name: string, size: string, replicas: number): Promise<VolumeDetails> {
    const response = await this.api('POST', '/v1/volumes', { name, size, replicas });
    if (response.status !== 201) throw new Error(`create ${name}: ${response.status} ${JSON.stringify(response.body)}`);
    return response.body as VolumeDetails;
  }

  /**
   * Where a client of `volume` should connect: its owner while that node is
   * up, else any live node (connecting there takes a down owner's volume
   * over). Undefined when no node is live.
   */
  async nbdUriFor(volume: string, rng: SeededPrng): Promise<string | undefined> {
    const up = this.upIds();
    let owner: string | null = null;
    try {
      owner = (await this.volume(volume)).attachedTo;
    } catch (err) {
      // No node answered (all frozen or dead, or no leader): guess below; the caller retries.
      this.#logger.debug({ err, volume }, 'owner unknown; connecting to any live node');
    }
    const target = owner !== null && up.includes(owner) ? owner : up[rng.nextInt(up.length)];
    return target === undefined ? undefined : this.daemon(target).nbdUri(volume);
  }

  /** Every node up in the cluster's view and every volume healthy; bounded by `timeoutMs`. Returns the ms it took. */
  async waitConverged(volumes: readonly string[], timeoutMs: number): Promise<{ converged: boolean; elapsedMs: number; last: string }> {
    const started = Date.now();
    let last = 'not asked yet';
    while (Date.now() - started < timeoutMs) {
      try {
        last = await this.#convergenceGap(volumes);
        if (last === '') return { converged: true, elapsedMs: Date.now() - started, last: 'converged' };
      } catch (err) {
        last = err instanceof Error ? err.message : String(err);
        this.#logger.debug({ err }, 'convergence probe failed');
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    return { converged: false, elapsedMs: Date.now() - started, last };
  }

  /** SIGTERM every node (drain, flush, close the pools), SIGKILL after the deadline. */
  async stopAll(): Promise<void> {
    for (const id of [...this.#stopped]) this.thaw(id);
    await Promise.all(this.ids.map((id) => this.daemon(id).stop({ timeoutMs: 20_000 })));
  }

  /** '' when converged, else what is missing. */
  async #convergenceGap(volumes: readonly string[]): Promise<string> {
    const nodes = await this.api('GET', '/v1/nodes');
    if (nodes.status !== 200) return `nodes: ${nodes.status}`;
    const down = (nodes.body as { nodes: NodeView[] }).nodes.filter((node) => node.state !== 'up').map((node) => node.id);
    if (down.length > 0) return `nodes not up: ${down.join(', ')}`;
    for (const name of volumes) {
      const view = await this.volume(name);
      if (view.state !== 'healthy') return `${name} ${view.state}: ${view.replicas.map((r) => `${r.nodeId}=${r.state}`).join(' ')}`;
    }
    return '';
  }

  #env(id: string): Record<string, string> {
    if (!this.#options.powerLoss) return {};
    // One seed per node id, the same for every incarnation: a replay cuts the same way.
    return { PLINTH_TEST_DISK: `power-loss:seed=${this.#options.seed * 64 + Number(id.slice(1))}` };
  }

  #track(id: string, daemon: DaemonProcess): void {
    this.#daemons.set(id, daemon);
    this.incarnations.push({ id, daemon });
  }
}

function loopbackLauncher(host: TeardownHost, logLevel: string): NodeLauncher {
  return {
    start: (id, join, env) =>
      startFailpointMember(host, id, { ...(join === undefined ? {} : { join: join.daemon }), env, logLevel, dataDirPrefix: SOAK_DATA_DIR_PREFIX }),
    restart: (id, previous, env) =>
      restartInPlace(host, { args: ['--node-id', id], env: { ...TEST_API_ENV, ...env }, logLevel, dataDir: previous.dataDir, ports: previous.ports }),
  };
}

/** Data dirs are the fixture's (`plinth-netns-<id>-`); the test API and fast timing as on loopback. */
function netnsLauncher(host: TeardownHost, netns: NetnsCluster, logLevel: string): NodeLauncher {
  return {
    start: (id, join, env) => netns.startDaemon(host, id, { ...(join === undefined ? {} : { join: join.id }), env: { ...TEST_API_ENV, ...env }, logLevel }),
    restart: (id, previous, env) =>
      restartInPlace(host, {
        args: ['--node-id', id],
        env: { ...TEST_API_ENV, ...env },
        logLevel,
        dataDir: previous.dataDir,
        ports: previous.ports,
        netns: { name: netns.node(id).namespace, host: previous.host, apiUrl: previous.apiUrl },
      }),
  };
}

/**
 * Restart a node on its data dir and ports (as startFailpointMember's and
 * NetnsCluster's `restartOf` do), but never leave the process behind when it
 * does not get ready in time: startDaemon throws and keeps it running, and
 * that untracked daemon went on serving as the node, so every later restart
 * found its data dir locked and the final replica comparison could not open
 * it (seed 201, 5 nodes: "data dir … is in use by another plinthd").
 */
async function restartInPlace(host: TeardownHost, options: SpawnDaemonOptions): Promise<DaemonProcess> {
  const daemon = await spawnDaemon(host, options);
  try {
    await daemon.waitForReady({ timeoutMs: RESTART_READY_MS });
    return daemon;
  } catch (err) {
    await daemon.kill();
    throw err;
  }
}
