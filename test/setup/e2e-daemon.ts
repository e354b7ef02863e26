/**
 * One real plinthd for an e2e test, as the e2e files use it: a data dir in
 * the test's work dir, free loopback ports, small sparse file disks, the API
 * token, NBD URIs, and the ways a test ends a daemon (SIGTERM drain, kill -9)
 * and brings it back on the same data dir and ports.
 *
 * Spawning, readiness and log capture are the shared daemon harness's
 * (test/helpers/daemon-harness.ts); this wrapper only keeps "the same daemon"
 * across restarts, which the harness models as a new process each time.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type DaemonPorts,
  type DaemonProcess,
  type ExitStatus,
  type TeardownHost,
  pickFreePorts,
  startDaemon,
} from '../helpers/daemon-harness.js';

export const LOOPBACK = '127.0.0.1';
export const PLINTH_CLI_PATH = fileURLToPath(new URL('../../api/cli/plinth.js', import.meta.url));
export const E2E_NODE_ID = 'e2e';

const STOP_TIMEOUT_MS = 30_000;

export interface E2eDaemonOptions {
  /** Scratch directory owned by the test; the data dir goes inside it. */
  readonly workDir: string;
  /** `PATH:SIZE` disk specs, e.g. `${workDir}/d0.img:2GiB`. */
  readonly disks: readonly string[];
}

export class E2eDaemon {
  readonly dataDir: string;
  readonly apiUrl: string;
  readonly nbdPort: number;
  private readonly ports: DaemonPorts;
  private readonly disks: readonly string[];
  private readonly teardownHost: TeardownHost;
  private process: DaemonProcess | undefined;
  private tokenText: string | undefined;
  private earlierLogs = '';

  private constructor(teardownHost: TeardownHost, options: E2eDaemonOptions, ports: DaemonPorts) {
    this.teardownHost = teardownHost;
    this.dataDir = join(options.workDir, 'data');
    this.disks = options.disks;
    this.ports = ports;
    this.apiUrl = `http://${LOOPBACK}:${ports.api}`;
    this.nbdPort = ports.nbd;
  }

  /** Start a daemon and wait until /readyz says ready. */
  static async start(teardownHost: TeardownHost, options: E2eDaemonOptions): Promise<E2eDaemon> {
    const [api, peer, nbd, iscsi] = await pickFreePorts(4);
    if (api === undefined || peer === undefined || nbd === undefined || iscsi === undefined) throw new Error('no free ports');
    const daemon = new E2eDaemon(teardownHost, options, { api, peer, nbd, iscsi });
    await daemon.launch();
    return daemon;
  }

  get token(): string {
    if (this.tokenText === undefined) throw new Error('daemon not started');
    return this.tokenText;
  }

  nbdUri(exportName: string): string {
    return `nbd://${LOOPBACK}:${this.nbdPort}/${encodeURIComponent(exportName)}`;
  }

  isRunning(): boolean {
    return this.process !== undefined && this.process.exitStatus === null;
  }

  /** Everything the daemon wrote, across restarts. */
  logs(): string {
    const current = this.process === undefined ? '' : this.process.describeOutput();
    return `${this.earlierLogs}${current}`;
  }

  /** Start again on the same data dir and ports (after stop or kill). */
  async restart(): Promise<void> {
    if (this.isRunning()) throw new Error('restart: daemon still running');
    if (this.process !== undefined) this.earlierLogs += `${this.process.describeOutput()}\n--- restart ---\n`;
    await this.launch();
  }

  /** SIGTERM and wait for the drain; SIGKILL only after the deadline. */
  async stop(timeoutMs = STOP_TIMEOUT_MS): Promise<ExitStatus & { forced: boolean }> {
    if (this.process === undefined) return { code: null, signal: null, forced: false };
    return this.process.stop({ timeoutMs });
  }

  /** kill -9: no drain, no flush. */
  async kill(): Promise<ExitStatus> {
    if (this.process === undefined) return { code: null, signal: null };
    return this.process.kill();
  }

  private async launch(): Promise<void> {
    this.process = await startDaemon(this.teardownHost, {
      dataDir: this.dataDir,
      ports: this.ports,
      disks: this.disks,
      args: ['--node-id', E2E_NODE_ID],
    });
    this.tokenText = await this.process.token();
  }
}
