/**
 * Real network faults between real daemons (project rule: "for real network
 * faults use network namespaces that the test creates itself"). Every node
 * gets its own namespace; every pair of nodes gets its own wire: a veth end
 * in each node's namespace, joined by a two-port bridge in a dedicated wire
 * namespace. Cutting a pair sets the wire-side ports down: both nodes lose
 * carrier, keep their routes, and every packet between them is dropped
 * silently, like a real network cut (no RST, no ICMP, no instant error), so
 * the code's own timeouts are what notice it. Per-pair wires allow any
 * partition, not just isolating one node.
 *
 * Addresses: node i is 10.213.0.i/32 on its namespace's lo, reached over
 * the wire to it (host routes with static neighbours). They exist only
 * inside these namespaces; the host's interfaces, routes and addresses are
 * never touched. The test process talks to each API through a forwarder:
 * a unix socket served from inside the namespace (filesystem sockets cross
 * network namespaces) behind a listener on the host's 127.0.0.1.
 *
 * Everything (daemons, children, forwarders, namespaces and with them every
 * veth and bridge) goes at teardown, also when the test fails.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { IP_BIN, makeTempDir, startDaemon, type DaemonProcess, type TeardownHost } from '../helpers/daemon-harness.js';
import { killAndWait, run, runOk, toolEnv, type RunResult } from './e2e-process.js';

/** Every namespace has its own port space, so every daemon uses the defaults. */
export const NETNS_PORTS = { api: 9700, peer: 9701, nbd: 10809, iscsi: 3260 } as const;

const SUBNET = '10.213.0';
const MAX_NODES = 16;
const IP_TIMEOUT_MS = 10_000;

export interface NetnsNode {
  readonly id: string;
  /** 1-based; the last byte of the address. */
  readonly index: number;
  readonly namespace: string;
  readonly address: string;
}

export interface NetnsDaemonOptions {
  /** Join the cluster through this node's peer address. */
  readonly join?: string;
  readonly env?: Readonly<Record<string, string>>;
  readonly args?: readonly string[];
  readonly logLevel?: string;
  /** Restart this (exited) daemon of the node in place: same data dir, no --join (the soak's kill -9 and power cuts). */
  readonly restartOf?: DaemonProcess;
}

export interface LinkImpairment {
  readonly delayMs?: number;
  readonly lossPercent?: number;
}

/** A skip reason when this machine cannot create network namespaces (not root, no iproute2). */
export function netnsUnavailableReason(): string | undefined {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'network namespaces need root';
  const probe = `pl${process.pid}probe`;
  const added = spawnSync(IP_BIN, ['netns', 'add', probe], { encoding: 'utf8', env: toolEnv() });
  if (added.error !== undefined || added.status !== 0) {
    return `ip netns add is not permitted here: ${added.error?.message ?? added.stderr.trim()}`;
  }
  spawnSync(IP_BIN, ['netns', 'del', probe], { env: toolEnv() });
  return undefined;
}

export class NetnsCluster {
  readonly nodes: readonly NetnsNode[];
  /** The namespace holding the per-pair bridges. */
  readonly wireNamespace: string;
  readonly #socketDir: string;
  readonly #cutPairs = new Set<string>();
  readonly #impaired = new Set<string>();
  readonly #daemons: DaemonProcess[] = [];
  readonly #children: ChildProcess[] = [];
  readonly #servers: Server[] = [];
  readonly #createdNamespaces: string[] = [];
  /** One API forwarder per node, kept across restarts (its unix socket path is the node's). */
  readonly #apiUrls = new Map<string, string>();

  private constructor(nodes: NetnsNode[], wireNamespace: string, socketDir: string) {
    this.nodes = nodes;
    this.wireNamespace = wireNamespace;
    this.#socketDir = socketDir;
  }

  /** Build namespaces and wires for `nodeIds`; torn down with `t`. Names carry the pid so parallel runs never collide. */
  static async create(t: TeardownHost, nodeIds: readonly string[]): Promise<NetnsCluster> {
    if (nodeIds.length < 2 || nodeIds.length > MAX_NODES) throw new Error(`a netns cluster has 2..${MAX_NODES} nodes, not ${nodeIds.length}`);
    const prefix = `pl${process.pid}`;
    const nodes = nodeIds.map((id, i) => ({ id, index: i + 1, namespace: `${prefix}-n${i + 1}`, address: `${SUBNET}.${i + 1}` }));
    const cluster = new NetnsCluster(nodes, `${prefix}-wire`, await mkdtemp(join(tmpdir(), 'plinth-netns-')));
    t.teardown(() => cluster.close());
    for (const namespace of [cluster.wireNamespace, ...nodes.map((node) => node.namespace)]) {
      // A namespace left by a crashed run of a process with the same pid is stale by definition.
      await run(IP_BIN, ['netns', 'del', namespace], { timeoutMs: IP_TIMEOUT_MS });
      await runOk(IP_BIN, ['netns', 'add', namespace], { timeoutMs: IP_TIMEOUT_MS });
      cluster.#createdNamespaces.push(namespace);
    }
    await cluster.#batch(cluster.wireNamespace, cluster.#wireCommands());
    for (const node of nodes) await cluster.#batch(node.namespace, cluster.#nodeCommands(node));
    return cluster;
  }

  node(id: string): NetnsNode {
    const node = this.nodes.find((candidate) => candidate.id === id);
    if (node === undefined) throw new Error(`no node ${id} in this netns cluster`);
    return node;
  }

  /** Start plinthd inside the node's namespace and wait until it is ready. */
  async startDaemon(t: TeardownHost, id: string, options: NetnsDaemonOptions = {}): Promise<DaemonProcess> {
    const node = this.node(id);
    const apiUrl = this.#apiUrls.get(id) ?? (await this.#forwardApi(node));
    this.#apiUrls.set(id, apiUrl);
    const joinArgs = options.join === undefined || options.restartOf !== undefined ? [] : ['--join', `${this.node(options.join).address}:${NETNS_PORTS.peer}`];
    const daemon = await startDaemon(t, {
      // A recognisable data dir: `pkill -f "plinthd.js --data-dir /tmp/plinth-netns-"` finds strays of these tests only.
      dataDir: options.restartOf?.dataDir ?? (await makeTempDir(t, `plinth-netns-${id}-`)),
      ports: NETNS_PORTS,
      netns: { name: node.namespace, host: node.address, apiUrl },
      args: ['--node-id', id, ...joinArgs, ...(options.args ?? [])],
      env: options.env ?? {},
      ...(options.logLevel === undefined ? {} : { logLevel: options.logLevel }),
    });
    this.#daemons.push(daemon);
    return daemon;
  }

  /** Spawn a command inside the node's namespace (killed at teardown). */
  spawnIn(id: string, command: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
    const child = spawn(IP_BIN, ['netns', 'exec', this.node(id).namespace, command, ...args], { env: toolEnv(), ...options });
    this.#children.push(child);
    return child;
  }

  /** Run a command to completion inside the node's namespace (SIGKILL at the deadline). */
  runIn(id: string, command: string, args: readonly string[], timeoutMs: number): Promise<RunResult> {
    return run(IP_BIN, ['netns', 'exec', this.node(id).namespace, command, ...args], { timeoutMs });
  }

  /** Silently drop everything between a and b, both ways. */
  async cut(a: string, b: string): Promise<void> {
    await this.#setWire(a, b, 'down');
  }

  async connect(a: string, b: string): Promise<void> {
    await this.#setWire(a, b, 'up');
  }

  /** Cut `node` off from each of `others` (the rest of its links stay as they are). */
  async partition(node: string, others: readonly string[]): Promise<void> {
    for (const other of others) await this.cut(node, other);
  }

  /** Cut `node` off from every other node. */
  async isolate(node: string): Promise<void> {
    await this.partition(node, this.nodes.filter((other) => other.id !== node).map((other) => other.id));
  }

  /** Reconnect every cut pair and lift every impairment. */
  async heal(): Promise<void> {
    for (const key of [...this.#cutPairs]) {
      const [a, b] = key.split('|');
      if (a !== undefined && b !== undefined) await this.connect(a, b);
    }
    for (const key of [...this.#impaired]) {
      const [a, b] = key.split('|');
      if (a !== undefined && b !== undefined) await this.impair(a, b, {});
    }
  }

  /**
   * Delay and/or lose packets between a and b, both ways (`tc qdisc netem`
   * on each node's end of the wire); `{}` lifts it. Throws with a clear
   * message where the kernel has no sch_netem (see netemUnavailableReason).
   */
  async impair(a: string, b: string, impairment: LinkImpairment): Promise<void> {
    const key = pairKey(this.node(a), this.node(b));
    const lift = impairment.delayMs === undefined && impairment.lossPercent === undefined;
    for (const [from, to] of [[this.node(a), this.node(b)], [this.node(b), this.node(a)]] as const) {
      const device = `p${to.index}`;
      if (lift) {
        // No qdisc to delete is fine: lifting is idempotent.
        await run('tc', ['-n', from.namespace, 'qdisc', 'del', 'dev', device, 'root'], { timeoutMs: IP_TIMEOUT_MS });
        continue;
      }
      const netem = [
        ...(impairment.delayMs === undefined ? [] : ['delay', `${impairment.delayMs}ms`]),
        ...(impairment.lossPercent === undefined ? [] : ['loss', `${impairment.lossPercent}%`]),
      ];
      const result = await run('tc', ['-n', from.namespace, 'qdisc', 'replace', 'dev', device, 'root', 'netem', ...netem], { timeoutMs: IP_TIMEOUT_MS });
      if (result.code !== 0) throw new Error(`tc netem on ${from.id}→${to.id} failed (kernel without sch_netem?): ${result.stderr.trim()}`);
    }
    if (lift) this.#impaired.delete(key);
    else this.#impaired.add(key);
  }

  /** A skip reason when `tc qdisc netem` is not available in this kernel (probed on a live wire). */
  async netemUnavailableReason(): Promise<string | undefined> {
    const [first, second] = this.nodes;
    if (first === undefined || second === undefined) return 'no wire to probe';
    const probe = await run('tc', ['-n', first.namespace, 'qdisc', 'replace', 'dev', `p${second.index}`, 'root', 'netem', 'delay', '1ms'], { timeoutMs: IP_TIMEOUT_MS });
    if (probe.code !== 0) return `tc qdisc netem is not available: ${probe.stderr.trim()}`;
    await run('tc', ['-n', first.namespace, 'qdisc', 'del', 'dev', `p${second.index}`, 'root'], { timeoutMs: IP_TIMEOUT_MS });
    return undefined;
  }

  /** Kill daemons and children first (a namespace lives on while a process is in it), then delete every namespace. */
  async close(): Promise<void> {
    await Promise.all(this.#daemons.splice(0).map((daemon) => daemon.kill()));
    await Promise.all(this.#children.splice(0).map((child) => killAndWait(child, 'SIGKILL', 5000)));
    await Promise.all(this.#servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
    for (const namespace of this.#createdNamespaces.splice(0).reverse()) {
      const result = await run(IP_BIN, ['netns', 'del', namespace], { timeoutMs: IP_TIMEOUT_MS });
      if (result.code !== 0) process.stderr.write(`netns-cluster: could not delete ${namespace}: ${result.stderr}\n`);
    }
    await rm(this.#socketDir, { recursive: true, force: true });
  }

  /** One bridge per pair, the two wire-side veth ends as its ports; the node-side ends land in the node namespaces. */
  #wireCommands(): string[] {
    const commands = ['link set lo up'];
    for (const [a, b] of this.#pairs()) {
      const bridge = `br${a.index}x${b.index}`;
      commands.push(`link add ${bridge} type bridge`);
      for (const [near, far] of [[a, b], [b, a]] as const) {
        commands.push(`link add ${wireEnd(near, far)} type veth peer name p${far.index} address ${macOf(near, far)} netns ${near.namespace}`);
        commands.push(`link set ${wireEnd(near, far)} master ${bridge} up`);
      }
      commands.push(`link set ${bridge} up`);
    }
    return commands;
  }

  /** The node's address on lo, and a host route plus a static neighbour per peer (no ARP to fail or wait for). */
  #nodeCommands(node: NetnsNode): string[] {
    const commands = ['link set lo up', `addr add ${node.address}/32 dev lo`];
    for (const peer of this.nodes) {
      if (peer.index === node.index) continue;
      commands.push(`link set p${peer.index} up`);
      commands.push(`route add ${peer.address}/32 dev p${peer.index} src ${node.address}`);
      commands.push(`neigh replace ${peer.address} lladdr ${macOf(peer, node)} dev p${peer.index} nud permanent`);
    }
    return commands;
  }

  #pairs(): Array<[NetnsNode, NetnsNode]> {
    return this.nodes.flatMap((a, i) => this.nodes.slice(i + 1).map((b): [NetnsNode, NetnsNode] => [a, b]));
  }

  async #setWire(a: string, b: string, state: 'up' | 'down'): Promise<void> {
    const [near, far] = [this.node(a), this.node(b)];
    if (near.index === far.index) throw new Error(`cannot cut ${a} from itself`);
    await this.#batch(this.wireNamespace, [`link set ${wireEnd(near, far)} ${state}`, `link set ${wireEnd(far, near)} ${state}`]);
    if (state === 'down') this.#cutPairs.add(pairKey(near, far));
    else this.#cutPairs.delete(pairKey(near, far));
  }

  async #batch(namespace: string, commands: readonly string[]): Promise<void> {
    await runOk(IP_BIN, ['-n', namespace, '-batch', '-'], { timeoutMs: IP_TIMEOUT_MS, input: `${commands.join('\n')}\n` });
  }

  /** A unix socket served from inside the namespace (to its 127.0.0.1 API), exposed on the host's 127.0.0.1. */
  async #forwardApi(node: NetnsNode): Promise<string> {
    const socketPath = join(this.#socketDir, `${node.id}-api.sock`);
    const forwarder = this.spawnIn(node.id, process.execPath, ['-e', FORWARDER_JS], {
      env: { ...toolEnv(), FORWARD_SOCKET: socketPath, FORWARD_PORT: String(NETNS_PORTS.api) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    await waitForLine(forwarder, 'forwarding', 10_000);
    const server = createServer((client) => pipeBoth(client, createConnection(socketPath)));
    this.#servers.push(server);
    const port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        if (address === null || typeof address === 'string') reject(new Error('forwarder has no port'));
        else resolve(address.port);
      });
    });
    return `http://127.0.0.1:${port}`;
  }
}

/** Runs inside a namespace: unix socket → the namespace's own 127.0.0.1:FORWARD_PORT. */
const FORWARDER_JS = String.raw`
const net = require('node:net');
const server = net.createServer((client) => {
  const upstream = net.connect(Number(process.env.FORWARD_PORT), '127.0.0.1');
  const end = () => { client.destroy(); upstream.destroy(); };
  client.on('error', end); upstream.on('error', end); client.on('close', end); upstream.on('close', end);
  client.pipe(upstream).pipe(client);
});
server.listen(process.env.FORWARD_SOCKET, () => console.log('forwarding'));
`;

/** Either side failing or closing ends both (an HTTP client sees a reset, as with a dead server). */
function pipeBoth(a: Socket, b: Socket): void {
  const end = (): void => {
    a.destroy();
    b.destroy();
  };
  for (const socket of [a, b]) {
    socket.on('error', end);
    socket.on('close', end);
  }
  a.pipe(b).pipe(a);
}

function waitForLine(child: ChildProcess, line: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => reject(new Error(`no "${line}" within ${timeoutMs} ms: ${stderr}`)), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before "${line}": ${stderr}`));
    });
    if (child.stdout === null) throw new Error('child has no stdout pipe');
    createInterface({ input: child.stdout }).on('line', (text) => {
      if (text.trim() !== line) return;
      clearTimeout(timer);
      resolve();
    });
  });
}

function wireEnd(near: NetnsNode, far: NetnsNode): string {
  return `w${near.index}x${far.index}`;
}

/** Node `near`'s end of the wire to `far`: locally administered, unique per wire. */
function macOf(near: NetnsNode, far: NetnsNode): string {
  return `02:50:00:00:${hex(near.index)}:${hex(far.index)}`;
}

function hex(value: number): string {
  return value.toString(16).padStart(2, '0');
}

function pairKey(a: NetnsNode, b: NetnsNode): string {
  return a.index < b.index ? `${a.id}|${b.id}` : `${b.id}|${a.id}`;
}
