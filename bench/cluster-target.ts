/**
 * An N-daemon Plinth cluster on loopback for the cluster benchmark: node 1
 * bootstraps, the others `--join` it (ARCHITECTURE "cluster" row), every
 * daemon with its own temp data dir and the default sparse file disk, and
 * the daemons' default timeouts (no PLINTH_RAFT_TICK_MS /
 * PLINTH_NODE_DOWN_AFTER_MS shortcuts: the failover row measures defaults).
 * Members can be killed (-9), frozen (SIGSTOP) and restarted on the same
 * data dir and ports, which is what the rebuild and failover rows need.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, LOOPBACK, stopChild } from './bench-process.js';
import { waitReady } from './plinth-target.js';
import { PLINTHD_NODE_FLAGS } from '../daemon/bin/node-flags.js';

export interface ClusterTargetOptions {
  readonly workDir: string;
  readonly nodeCount: number;
  /** plinthd --log-level (default warn); daemon output is kept for error messages. */
  readonly logLevel?: string;
  /** When set, run every daemon under `node --cpu-prof` writing profiles here (written on SIGTERM, not on kill -9). */
  readonly cpuProfileDir?: string;
}

export interface MemberPorts {
  readonly api: number;
  readonly peer: number;
  readonly nbd: number;
  readonly iscsi: number;
}

/** Replica and volume views as `GET /v1/volumes/{name}` returns them (daemon/control-plane.ts). */
export interface ReplicaBody {
  readonly nodeId: string;
  readonly state: 'in-sync' | 'rebuilding' | 'faulted';
  readonly rebuild?: { readonly copiedBytes: number; readonly totalBytes: number; readonly done: boolean };
}
export interface VolumeBody {
  readonly name: string;
  readonly attachedTo: string | null;
  readonly state: 'healthy' | 'degraded' | 'faulted';
  readonly generation: number;
  readonly replicas: readonly ReplicaBody[];
}

const DAEMON_PATH = fileURLToPath(new URL('../daemon/bin/plinthd.js', import.meta.url));
/** The daemon drains and flushes on SIGTERM; give it time before SIGKILL. */
const STOP_GRACE_MS = 30_000;
/** Keep this much of each daemon's output for error messages (a limit on everything). */
const OUTPUT_KEEP_CHARS = 16_384;
const API_TIMEOUT_MS = 15_000;

/** Every daemon this process started and has not seen exit: killed if the benchmark itself is interrupted. */
const liveDaemons = new Set<ChildProcess>();
let interruptHandlerInstalled = false;

function killDaemonsOnInterrupt(): void {
  if (interruptHandlerInstalled) return;
  interruptHandlerInstalled = true;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      process.stderr.write(`cluster-bench: ${signal}: killing ${liveDaemons.size} plinthd\n`);
      for (const child of liveDaemons) child.kill('SIGKILL');
      process.exit(130);
    });
  }
}

export class ClusterMember {
  readonly nodeId: string;
  readonly dataDir: string;
  readonly ports: MemberPorts;
  readonly #args: readonly string[];
  readonly #nodeArgs: readonly string[];
  #child: ChildProcess | undefined;
  #output = '';

  constructor(nodeId: string, dataDir: string, ports: MemberPorts, args: readonly string[], nodeArgs: readonly string[]) {
    this.nodeId = nodeId;
    this.dataDir = dataDir;
    this.ports = ports;
    this.#args = args;
    this.#nodeArgs = nodeArgs;
  }

  get apiUrl(): string {
    return `http://${LOOPBACK}:${this.ports.api}`;
  }

  /** The running daemon's process id (for /proc CPU counters), or undefined. */
  get pid(): number | undefined {
    return this.running ? this.#child?.pid : undefined;
  }

  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  nbdUri(exportName: string): string {
    return `nbd://${LOOPBACK}:${this.ports.nbd}/${exportName}`;
  }

  /** Start (or restart, on the same data dir and ports) and wait for /readyz. */
  async start(): Promise<void> {
    if (this.running) throw new Error(`${this.nodeId} is already running`);
    this.#output = '';
    const child = spawn(process.execPath, [...PLINTHD_NODE_FLAGS, ...this.#nodeArgs, DAEMON_PATH, ...this.#args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (chunk: string): void => {
      this.#output = (this.#output + chunk).slice(-OUTPUT_KEEP_CHARS);
    };
    child.stdout.setEncoding('utf8').on('data', keep);
    child.stderr.setEncoding('utf8').on('data', keep);
    this.#child = child;
    killDaemonsOnInterrupt();
    liveDaemons.add(child);
    child.once('exit', () => liveDaemons.delete(child));
    try {
      await waitReady(this.apiUrl, () => this.running);
    } catch (err: unknown) {
      await this.kill();
      throw new Error(`${this.nodeId}: ${err instanceof Error ? err.message : String(err)}\n${this.#output}`);
    }
  }

  /** kill -9: a crash, nothing flushed. Resolves once the process is gone. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (child === undefined || !this.running) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
  }

  /** SIGSTOP / SIGCONT: a frozen node (sockets stay open, nothing answers). */
  freeze(frozen: boolean): void {
    if (this.running) this.#child?.kill(frozen ? 'SIGSTOP' : 'SIGCONT');
  }

  async stop(): Promise<void> {
    const child = this.#child;
    if (child === undefined || !this.running) return;
    child.kill('SIGCONT');
    const code = await stopChild(child, STOP_GRACE_MS);
    if (code !== 0) process.stderr.write(`plinthd ${this.nodeId} exited with ${code} on SIGTERM\n${this.#output.slice(-2000)}\n`);
  }

  output(): string {
    return this.#output;
  }

  /** An authenticated REST call; the JSON body parsed, or the text. */
  async api(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
    const token = (await readFile(join(this.dataDir, 'api-token'), 'utf8')).trim();
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(`${this.apiUrl}${path}`, {
      method,
      headers,
      signal: AbortSignal.timeout(API_TIMEOUT_MS),
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    const isJson = (response.headers.get('content-type') ?? '').includes('application/json');
    return { status: response.status, body: isJson && text.length > 0 ? (JSON.parse(text) as unknown) : text };
  }

  async createVolume(name: string, sizeBytes: number, replicaCount: number): Promise<VolumeBody> {
    const created = await this.api('POST', '/v1/volumes', { name, size: sizeBytes, replicas: replicaCount });
    if (created.status !== 201) throw new Error(`creating ${name} via ${this.nodeId}: HTTP ${created.status} ${JSON.stringify(created.body)}`);
    return created.body as VolumeBody;
  }

  async volume(name: string): Promise<VolumeBody> {
    const view = await this.api('GET', `/v1/volumes/${encodeURIComponent(name)}`);
    if (view.status !== 200) throw new Error(`inspect ${name} via ${this.nodeId}: HTTP ${view.status} ${JSON.stringify(view.body)}`);
    return view.body as VolumeBody;
  }
}

export interface ClusterTarget {
  readonly members: readonly ClusterMember[];
  member(nodeId: string): ClusterMember;
  stop(): Promise<void>;
}

async function memberPorts(): Promise<MemberPorts> {
  return { api: await freePort(), peer: await freePort(), nbd: await freePort(), iscsi: await freePort() };
}

/** Start nodes n1..nN, each joining the previous one, all ready. */
export async function startClusterTarget(options: ClusterTargetOptions): Promise<ClusterTarget> {
  const nodeArgs = options.cpuProfileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfileDir}`];
  if (options.cpuProfileDir !== undefined) await mkdir(options.cpuProfileDir, { recursive: true });
  const members: ClusterMember[] = [];
  const stopAll = async (): Promise<void> => {
    await Promise.all(members.map((member) => member.stop()));
  };
  try {
    for (let index = 1; index <= options.nodeCount; index += 1) {
      const nodeId = `n${index}`;
      const dataDir = join(options.workDir, nodeId);
      const ports = await memberPorts();
      const previous = members.at(-1);
      const args = [
        `--data-dir=${dataDir}`,
        `--node-id=${nodeId}`,
        `--api=${LOOPBACK}:${ports.api}`,
        `--peer=${LOOPBACK}:${ports.peer}`,
        `--nbd=${LOOPBACK}:${ports.nbd}`,
        `--iscsi=${LOOPBACK}:${ports.iscsi}`,
        `--log-level=${options.logLevel ?? 'warn'}`,
        ...(previous === undefined ? [] : [`--join=${LOOPBACK}:${previous.ports.peer}`]),
      ];
      const member = new ClusterMember(nodeId, dataDir, ports, args, nodeArgs);
      members.push(member);
      await member.start();
    }
  } catch (err: unknown) {
    await stopAll();
    throw err;
  }
  return {
    members,
    member: (nodeId) => {
      const found = members.find((member) => member.nodeId === nodeId);
      if (found === undefined) throw new Error(`no member ${nodeId}`);
      return found;
    },
    stop: stopAll,
  };
}

/** Poll `probe` every `everyMs` until it returns a value or `timeoutMs` passes. */
export async function pollUntil<T>(what: string, timeoutMs: number, everyMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = 'condition not met';
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
      last = 'condition not met';
    } catch (err: unknown) {
      last = err instanceof Error ? err.message : String(err);
    }
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last})`);
}
