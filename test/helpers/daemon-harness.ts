import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dispatcherTrusting, type FetchDispatcher } from '../../api/client/tls-dispatcher.js';
import { PLINTHD_NODE_FLAGS } from '../../daemon/bin/node-flags.js';

/**
 * Spawn real `plinthd` processes for integration and e2e tests: free ports
 * on 127.0.0.1, a temp data dir, readiness by polling /readyz with a
 * deadline, SIGTERM (then SIGKILL) to stop, and every log line kept for
 * assertions and for failure messages. Everything is cleaned up through the
 * test's teardown.
 */

/** dist/test/helpers/daemon-harness.js → dist/daemon/bin/plinthd.js */
export const PLINTHD_BIN = fileURLToPath(new URL('../../daemon/bin/plinthd.js', import.meta.url));

export interface TeardownHost {
  teardown(fn: () => unknown): void;
}

export interface DaemonPorts {
  readonly api: number;
  readonly peer: number;
  readonly nbd: number;
  readonly iscsi: number;
}

export interface SpawnDaemonOptions {
  /** Reuse a data dir (e.g. to restart a daemon); default: a fresh temp dir removed at teardown. */
  readonly dataDir?: string;
  /** Default: four fresh free ports. */
  readonly ports?: Partial<DaemonPorts>;
  /** `--disk` values; default one 1 GiB sparse file in the data dir; null passes no --disk (the daemon's 64 GiB default). */
  readonly disks?: readonly string[] | null;
  /** Pass --data-dir/--api/--peer/--nbd/--iscsi flags (default true); false leaves them to `env`/`args`. */
  readonly addressFlags?: boolean;
  /** Extra arguments, appended last. */
  readonly args?: readonly string[];
  /** Extra environment; PLINTH_* of the test runner's own environment are dropped. */
  readonly env?: Readonly<Record<string, string>>;
  /** Passed as --log-level when set (the daemon's default is info). */
  readonly logLevel?: string;
  /** Run inside a network namespace (test/setup/netns-cluster.ts builds them); default: the host's loopback. */
  readonly netns?: DaemonNamespace;
  /** Node.js flags before the daemon's script, e.g. `--cpu-prof` (which NODE_OPTIONS does not allow). */
  readonly nodeArgs?: readonly string[];
  /**
   * Passed as --tls. 'on': the API is https:// and the harness's own calls
   * (api(), waitForReady()) trust the cluster CA from <data-dir>/tls/ca.crt.
   * Default: the daemon's own (auto), but 'off' inside a network namespace.
   */
  readonly tls?: 'on' | 'off' | 'auto';
}

/**
 * Where a daemon runs when it lives in a network namespace: the command is
 * prefixed with `ip netns exec <name>`, --peer/--nbd/--iscsi bind `host`
 * (an address that exists only inside the namespaces), --api binds the
 * namespace's own 127.0.0.1, and the test reaches that API through `apiUrl`
 * (a forwarder on the host's loopback), so the test never needs a route
 * into the namespaces.
 */
export interface DaemonNamespace {
  readonly name: string;
  readonly host: string;
  readonly apiUrl: string;
}

/** Every volume's target name is this prefix + the volume name (ARCHITECTURE "iSCSI" row). */
export const PLINTH_IQN_PREFIX = 'iqn.2026-11.io.plinth:';

/** `ip` lives in sbin, which a test runner's PATH may lack. */
export const IP_BIN = ['/usr/sbin/ip', '/sbin/ip', '/usr/bin/ip', '/bin/ip'].find((path) => existsSync(path)) ?? 'ip';

/** How much daemon output a failure prints; PLINTH_TEST_OUTPUT_CHARS raises it when chasing a failure. */
const OUTPUT_TAIL_CHARS = Number(process.env['PLINTH_TEST_OUTPUT_CHARS'] ?? 8000);

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface ApiResponse {
  readonly status: number;
  readonly body: unknown;
}

/** Pick `count` distinct free TCP ports on 127.0.0.1 (all held open at once, then released). */
/**
 * Ports for test daemons, below the kernel's ephemeral range (32768+ here):
 * a port handed out by listen(0) comes from that range, where any outbound
 * connection of a parallel test may take it as its source port before the
 * daemon binds it (seen as EADDRINUSE under load). Each port is checked by
 * binding it; startDaemon retries the rare clash with another test.
 */
const TEST_PORT_MIN = 12_000;
const TEST_PORT_MAX = 32_000;
const PLINTH_DEFAULT_PORTS = new Set([9700, 9701, 10809, 3260]);

export async function pickFreePorts(count: number): Promise<number[]> {
  const ports: number[] = [];
  for (let attempt = 0; ports.length < count && attempt < count * 50; attempt += 1) {
    const port = TEST_PORT_MIN + Math.floor(Math.random() * (TEST_PORT_MAX - TEST_PORT_MIN));
    if (ports.includes(port) || PLINTH_DEFAULT_PORTS.has(port)) continue;
    if (await canBind(port)) ports.push(port);
  }
  if (ports.length < count) throw new Error(`could not find ${count} free ports between ${TEST_PORT_MIN} and ${TEST_PORT_MAX}`);
  return ports;
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** Daemons spawned per data dir, so a dir is never removed under a live daemon. */
const daemonsByDataDir = new Map<string, Set<DaemonProcess>>();

/**
 * A temp dir removed at teardown, after killing any daemon still running on
 * it (whatever order the teardowns run in).
 */
export async function makeTempDir(t: TeardownHost, prefix = 'plinth-daemon-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.teardown(async () => {
    await Promise.all([...(daemonsByDataDir.get(dir) ?? [])].map((daemon) => daemon.kill()));
    daemonsByDataDir.delete(dir);
    await rm(dir, { recursive: true, force: true });
  });
  return dir;
}

export class DaemonProcess {
  readonly dataDir: string;
  readonly ports: DaemonPorts;
  readonly apiUrl: string;
  /** The address the NBD/iSCSI/peer listeners bind: 127.0.0.1, or the namespace's address. */
  readonly host: string;
  /** Started with --tls on: HTTPS API, TLS peer port, NBD STARTTLS required. */
  readonly tls: boolean;
  #dispatcher: FetchDispatcher | undefined;
  readonly #child: ChildProcess;
  readonly #exit: Promise<ExitStatus>;
  #status: ExitStatus | null = null;
  #stdout = '';
  #stderr = '';

  constructor(child: ChildProcess, dataDir: string, ports: DaemonPorts, netns?: DaemonNamespace, tls = false) {
    this.#child = child;
    this.dataDir = dataDir;
    this.ports = ports;
    this.tls = tls;
    this.apiUrl = netns?.apiUrl ?? `${tls ? 'https' : 'http'}://127.0.0.1:${ports.api}`;
    this.host = netns?.host ?? '127.0.0.1';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (this.#stdout += chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (this.#stderr += chunk));
    this.#exit = new Promise((resolve) => {
      // 'close' (not 'exit') so every byte of stdout/stderr is in before we resolve.
      child.once('close', (code, signal) => {
        this.#status = { code, signal };
        resolve(this.#status);
      });
    });
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** The exit status once the process is gone, else null. */
  get exitStatus(): ExitStatus | null {
    return this.#status;
  }

  nbdUri(exportName: string): string {
    return `nbd://${this.host}:${this.ports.nbd}/${exportName}`;
  }

  /** The cluster CA of a TLS daemon (PEM); exists once it bootstrapped or joined. */
  async caPem(): Promise<string> {
    return readFile(join(this.dataDir, 'tls', 'ca.crt'), 'utf8');
  }

  /**
   * libnbd's URI of an export behind NBD STARTTLS: `nbds://…?tls-certificates=DIR`.
   * DIR defaults to a client certificate folder this daemon issued
   * (`clientCertificateDir()`), since a TLS cluster's NBD server demands one
   * by default (`nbd-tls-client-certs: required`).
   */
  async nbdsUri(exportName: string, certificateDir?: string): Promise<string> {
    const dir = certificateDir ?? (await this.clientCertificateDir());
    return `nbds://${this.host}:${this.ports.nbd}/${exportName}?tls-certificates=${dir}`;
  }

  /**
   * A GnuTLS client certificate folder (ca-cert.pem, client-cert.pem,
   * client-key.pem) from POST /v1/tls/client-certificates, kept in the data
   * dir; made once per name.
   */
  async clientCertificateDir(name = 'plinth-test-client'): Promise<string> {
    const dir = join(this.dataDir, `nbd-client-${name}`);
    if (existsSync(join(dir, 'client-key.pem'))) return dir;
    const response = await this.api('POST', '/v1/tls/client-certificates', { name });
    const body = response.body as { caCert?: unknown; clientCert?: unknown; clientKey?: unknown };
    if (response.status !== 201 || typeof body.caCert !== 'string' || typeof body.clientCert !== 'string' || typeof body.clientKey !== 'string') {
      throw new Error(`client certificate refused: ${response.status} ${JSON.stringify(response.body)}`);
    }
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFile(join(dir, 'ca-cert.pem'), body.caCert);
    await writeFile(join(dir, 'client-cert.pem'), body.clientCert);
    await writeFile(join(dir, 'client-key.pem'), body.clientKey, { mode: 0o600 });
    return dir;
  }

  /** fetch that trusts the cluster CA when the daemon runs TLS. */
  async fetch(url: string, init: RequestInit = {}): Promise<Response> {
    if (!this.tls) return fetch(url, init);
    this.#dispatcher ??= dispatcherTrusting(await this.caPem());
    return fetch(url, { ...init, dispatcher: this.#dispatcher });
  }

  /** The volume's iSCSI target as libiscsi's tools take it (ARCHITECTURE "iSCSI": IQN `iqn.2026-11.io.plinth:<volume>`, LUN 0). */
  iscsiUri(volume: string): string {
    return `${this.iscsiPortalUri()}/${PLINTH_IQN_PREFIX}${volume}/0`;
  }

  /** The iSCSI portal alone, for SendTargets discovery (`iscsi-ls`). */
  iscsiPortalUri(): string {
    return `iscsi://${this.host}:${this.ports.iscsi}`;
  }

  stdout(): string {
    return this.#stdout;
  }

  stderr(): string {
    return this.#stderr;
  }

  /** stdout's JSON log records (non-JSON lines are skipped). */
  logRecords(): Array<Record<string, unknown>> {
    const records: Array<Record<string, unknown>> = [];
    for (const line of this.#stdout.split('\n')) {
      if (!line.startsWith('{')) continue;
      const parsed: unknown = JSON.parse(line);
      if (typeof parsed === 'object' && parsed !== null) records.push(parsed as Record<string, unknown>);
    }
    return records;
  }

  /** Log messages, in order: handy for `t.ok(daemon.logMessages().includes('plinthd ready'))`. */
  logMessages(): string[] {
    return this.logRecords().map((record) => String(record['msg']));
  }

  async token(): Promise<string> {
    return (await readFile(join(this.dataDir, 'api-token'), 'utf8')).trim();
  }

  /** An authenticated REST call; the body is parsed as JSON when it is JSON. */
  async api(method: string, path: string, body?: unknown, options: { timeoutMs?: number; headers?: Readonly<Record<string, string>> } = {}): Promise<ApiResponse> {
    const headers: Record<string, string> = { ...options.headers, authorization: `Bearer ${await this.token()}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await this.fetch(`${this.apiUrl}${path}`, {
      method,
      headers,
      signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    const isJson = (response.headers.get('content-type') ?? '').includes('application/json');
    return { status: response.status, body: isJson && text.length > 0 ? (JSON.parse(text) as unknown) : text };
  }

  /** Poll /readyz until 200, the process exits, or the deadline passes (then throws with the logs). */
  async waitForReady(options: { timeoutMs?: number } = {}): Promise<void> {
    const deadline = Date.now() + (options.timeoutMs ?? 20_000);
    let last = 'no answer yet';
    while (Date.now() < deadline) {
      if (this.#status !== null) throw new Error(`plinthd exited (${describeStatus(this.#status)}) before ready\n${this.describeOutput()}`);
      try {
        const response = await this.fetch(`${this.apiUrl}/readyz`, { signal: AbortSignal.timeout(1000) });
        if (response.status === 200) return;
        last = `${response.status} ${await response.text()}`;
      } catch (err) {
        last = err instanceof Error ? err.message : String(err);
      }
      await Promise.race([new Promise((resolve) => setTimeout(resolve, 50)), this.#exit]);
    }
    throw new Error(`plinthd not ready within the deadline (last: ${last})\n${this.describeOutput()}`);
  }

  /** Wait for the process to exit; throws after `timeoutMs` (default 20 s). */
  async waitForExit(options: { timeoutMs?: number } = {}): Promise<ExitStatus> {
    const timeoutMs = options.timeoutMs ?? 20_000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`plinthd did not exit within ${timeoutMs} ms\n${this.describeOutput()}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.#exit, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  signal(signal: NodeJS.Signals): void {
    if (this.#status === null) this.#child.kill(signal);
  }

  /** SIGTERM, wait up to `timeoutMs`; SIGKILL if still alive (then `forced` is true). */
  async stop(options: { timeoutMs?: number } = {}): Promise<ExitStatus & { forced: boolean }> {
    if (this.#status !== null) return { ...this.#status, forced: false };
    this.signal('SIGTERM');
    try {
      return { ...(await this.waitForExit({ timeoutMs: options.timeoutMs ?? 20_000 })), forced: false };
    } catch {
      // Did not stop in time: that is what `forced` reports to the caller.
      this.signal('SIGKILL');
      return { ...(await this.#exit), forced: true };
    }
  }

  /** SIGKILL: a crash, no clean shutdown. Resolves at once for an exited process. */
  async kill(): Promise<ExitStatus> {
    this.signal('SIGKILL');
    return this.#exit;
  }

  describeOutput(): string {
    return `--- plinthd stdout ---\n${this.#stdout.slice(-OUTPUT_TAIL_CHARS)}\n--- plinthd stderr ---\n${this.#stderr.slice(-4000)}`;
  }
}

/** Spawn without waiting for readiness (for tests of start-up failures). */
export async function spawnDaemon(t: TeardownHost, options: SpawnDaemonOptions = {}): Promise<DaemonProcess> {
  const dataDir = options.dataDir ?? (await makeTempDir(t));
  const ports = await resolvePorts(options.ports);
  const args: string[] = [];
  if (options.addressFlags !== false) {
    const host = options.netns?.host ?? '127.0.0.1';
    args.push('--data-dir', dataDir, '--api', `127.0.0.1:${ports.api}`, '--peer', `${host}:${ports.peer}`);
    args.push('--nbd', `${host}:${ports.nbd}`, '--iscsi', `${host}:${ports.iscsi}`);
  }
  const disks = options.disks === undefined ? [`${join(dataDir, 'disks', 'disk0.img')}:1GiB`] : options.disks;
  for (const disk of disks ?? []) args.push('--disk', disk);
  // PLINTH_TEST_LOG_LEVEL=debug makes every daemon of a test run chatty when chasing a failure.
  const logLevel = process.env['PLINTH_TEST_LOG_LEVEL'] ?? options.logLevel;
  if (logLevel !== undefined) args.push('--log-level', logLevel);
  // Namespace addresses are not loopback, so tls=auto would turn TLS on; those tests are about partitions: plain unless asked.
  const tls = options.tls ?? (options.netns === undefined ? undefined : 'off');
  if (tls !== undefined) args.push('--tls', tls);
  args.push(...(options.args ?? []));
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith('PLINTH_')) env[key] = value;
  }
  // `ip netns exec` execs the command in place, so the child's pid is plinthd's own and signals reach it.
  const node = [process.execPath, ...PLINTHD_NODE_FLAGS, ...(options.nodeArgs ?? [])];
  const [command, prefix] = options.netns === undefined ? [process.execPath, node.slice(1)] : [IP_BIN, ['netns', 'exec', options.netns.name, ...node]];
  const child = spawn(command, [...prefix, PLINTHD_BIN, ...args], { env: { ...env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const daemon = new DaemonProcess(child, dataDir, ports, options.netns, options.tls === 'on');
  const siblings = daemonsByDataDir.get(dataDir) ?? new Set();
  siblings.add(daemon);
  daemonsByDataDir.set(dataDir, siblings);
  t.teardown(async () => {
    if (daemon.exitStatus === null) await daemon.kill();
  });
  return daemon;
}

/** Spawn and wait until /readyz answers 200. */
export async function startDaemon(t: TeardownHost, options: SpawnDaemonOptions = {}): Promise<DaemonProcess> {
  // Ports the test chose itself are kept; picked ones may clash with a parallel test: pick again.
  const portsPicked = options.ports?.api === undefined || options.ports.peer === undefined || options.ports.nbd === undefined || options.ports.iscsi === undefined;
  for (let attempt = 1; ; attempt += 1) {
    const daemon = await spawnDaemon(t, options);
    try {
      await daemon.waitForReady();
      return daemon;
    } catch (err) {
      // A daemon that never became ready must not linger (it holds its data dir's lock and ports).
      if (daemon.exitStatus === null) await daemon.kill();
      const clash = daemon.describeOutput().includes('EADDRINUSE');
      if (!portsPicked || !clash || attempt >= 3) throw err;
    }
  }
}

async function resolvePorts(ports: Partial<DaemonPorts> = {}): Promise<DaemonPorts> {
  const [api, peer, nbd, iscsi] = await pickFreePorts(4);
  if (api === undefined || peer === undefined || nbd === undefined || iscsi === undefined) throw new Error('could not pick ports');
  return { api: ports.api ?? api, peer: ports.peer ?? peer, nbd: ports.nbd ?? nbd, iscsi: ports.iscsi ?? iscsi };
}

function describeStatus(status: ExitStatus): string {
  return status.signal === null ? `code ${status.code}` : `signal ${status.signal}`;
}
