/**
 * The two sides of the iSCSI benchmark, each a URL plus stop():
 *
 * - plinth: a fresh single-node plinthd (the tests' daemon harness: loopback
 *   ports, temp data dir, one sparse file disk) with one volume created over
 *   REST, served as `iqn.2026-11.io.plinth:<volume>` LUN 0;
 * - tgt: tgtd on loopback with a file LUN over a sparse file of the same size
 *   in the same work dir (test/setup/tgt-fixture.ts), LUN 1.
 */
import { connect } from 'node:net';
import { join } from 'node:path';
import { startDaemon, type TeardownHost } from '../test/helpers/daemon-harness.js';
import { startTgtTarget } from '../test/setup/tgt-fixture.js';

export interface IscsiBenchTarget {
  readonly name: 'plinth' | 'tgt';
  readonly url: string;
  stop(): Promise<void>;
}

/** Pool overhead: superblock reservation and slack beyond the volume (as bench/plinth-target.ts). */
const DISK_SLACK_BYTES = 256 * 1024 * 1024;
const STOP_TIMEOUT_MS = 30_000;
const LISTEN_TIMEOUT_MS = 10_000;

/** The harness registers clean-ups with a test; here they run when the target stops, newest first. */
class CleanupList implements TeardownHost {
  readonly #steps: Array<() => unknown> = [];

  teardown(fn: () => unknown): void {
    this.#steps.push(fn);
  }

  async run(): Promise<void> {
    for (const step of this.#steps.splice(0).reverse()) await step();
  }
}

async function waitForIscsiListener(url: string, isAlive: () => boolean): Promise<void> {
  const { hostname, port } = new URL(url.replace(/^iscsi:/, 'http:'));
  const deadline = Date.now() + LISTEN_TIMEOUT_MS;
  while (Date.now() < deadline && isAlive()) {
    const accepted = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: hostname, port: Number(port) });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (accepted) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`plinthd does not accept iSCSI connections on ${hostname}:${port}`);
}

/** `cpuProfileDir`: run plinthd under `node --cpu-prof` writing its profile there. */
export async function startPlinthIscsiTarget(workDir: string, volumeName: string, sizeBytes: number, cpuProfileDir?: string): Promise<IscsiBenchTarget> {
  const cleanup = new CleanupList();
  try {
    const dataDir = join(workDir, 'plinth-data');
    const daemon = await startDaemon(cleanup, {
      dataDir,
      disks: [`${join(dataDir, 'disk0.img')}:${sizeBytes + DISK_SLACK_BYTES}`],
      args: ['--node-id', 'bench'],
      logLevel: 'warn',
      ...(cpuProfileDir === undefined ? {} : { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${cpuProfileDir}`] }),
    });
    cleanup.teardown(async () => {
      const status = await daemon.stop({ timeoutMs: STOP_TIMEOUT_MS });
      if (status.forced || status.code !== 0) process.stderr.write(`plinthd exited ${status.code ?? status.signal} on SIGTERM\n${daemon.describeOutput()}\n`);
    });
    const created = await daemon.api('POST', '/v1/volumes', { name: volumeName, size: sizeBytes });
    if (created.status !== 201) throw new Error(`creating volume ${volumeName}: HTTP ${created.status} ${JSON.stringify(created.body)}`);
    const url = daemon.iscsiUri(volumeName);
    await waitForIscsiListener(url, () => daemon.exitStatus === null);
    return { name: 'plinth', url, stop: () => cleanup.run() };
  } catch (err: unknown) {
    await cleanup.run();
    throw err;
  }
}

export async function startTgtIscsiTarget(workDir: string, sizeBytes: number): Promise<IscsiBenchTarget> {
  const tgt = await startTgtTarget({ workDir, sizeBytes, iqn: 'iqn.2026-11.io.plinth.test:bench' });
  return { name: 'tgt', url: tgt.url, stop: () => tgt.stop() };
}
