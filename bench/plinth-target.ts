/**
 * Plinth under test: a fresh single-node plinthd with one sparse file disk in
 * a temp data dir, all listeners on loopback, and one volume created through
 * the REST API (ARCHITECTURE "user-facing contract": REST, NBD export name =
 * volume name).
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import { freePort, LOOPBACK, stopChild } from './bench-process.js';
import type { BenchTarget } from './nbdkit-target.js';
import { PLINTHD_NODE_FLAGS } from '../daemon/bin/node-flags.js';

export interface PlinthTargetOptions {
  readonly workDir: string;
  readonly volumeName: string;
  readonly volumeSizeBytes: number;
  /** When set, run the daemon under `node --cpu-prof` writing profiles here. */
  readonly cpuProfileDir?: string;
}

const READY_TIMEOUT_MS = 30_000;
/** The daemon drains and flushes on SIGTERM; give it time before SIGKILL. */
const STOP_GRACE_MS = 30_000;
/** Pool overhead: superblock reservation and slack beyond the volume. */
const DISK_SLACK_BYTES = 256 * 1024 * 1024;

const DAEMON_PATH = fileURLToPath(new URL('../daemon/bin/plinthd.js', import.meta.url));

export async function waitReady(apiUrl: string, isAlive: () => boolean): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let lastProblem = 'no answer';
  while (Date.now() < deadline) {
    if (!isAlive()) throw new Error(`plinthd exited before ready (${lastProblem})`);
    try {
      const response = await fetch(`${apiUrl}/readyz`);
      if (response.ok) return;
      lastProblem = `readyz ${response.status}: ${await response.text()}`;
    } catch (err: unknown) {
      lastProblem = err instanceof Error ? err.message : String(err);
    }
    await delay(100);
  }
  throw new Error(`plinthd not ready within ${READY_TIMEOUT_MS} ms: ${lastProblem}`);
}

async function createVolume(apiUrl: string, token: string, name: string, sizeBytes: number): Promise<void> {
  const response = await fetch(`${apiUrl}/v1/volumes`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name, size: sizeBytes }),
  });
  if (response.status !== 201) {
    throw new Error(`creating volume ${name}: HTTP ${response.status} ${await response.text()}`);
  }
}

export async function startPlinthTarget(options: PlinthTargetOptions): Promise<BenchTarget> {
  const dataDir = join(options.workDir, 'plinth-data');
  const [apiPort, peerPort, nbdPort, iscsiPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const nodeArgs = [...PLINTHD_NODE_FLAGS, ...(options.cpuProfileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfileDir}`])];
  const diskSizeBytes = options.volumeSizeBytes + DISK_SLACK_BYTES;
  const child = spawn(
    process.execPath,
    [
      ...nodeArgs,
      DAEMON_PATH,
      `--data-dir=${dataDir}`,
      '--node-id=bench',
      `--api=${LOOPBACK}:${apiPort}`,
      `--peer=${LOOPBACK}:${peerPort}`,
      `--nbd=${LOOPBACK}:${nbdPort}`,
      `--iscsi=${LOOPBACK}:${iscsiPort}`,
      `--disk=${join(dataDir, 'disk0.img')}:${diskSizeBytes}`,
      '--log-level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const apiUrl = `http://${LOOPBACK}:${apiPort}`;
  try {
    await waitReady(apiUrl, () => child.exitCode === null && child.signalCode === null);
    const token = (await readFile(join(dataDir, 'api-token'), 'utf8')).trim();
    await createVolume(apiUrl, token, options.volumeName, options.volumeSizeBytes);
  } catch (err: unknown) {
    await stopChild(child, STOP_GRACE_MS);
    throw err;
  }
  return {
    name: 'plinth',
    uri: `nbd://${LOOPBACK}:${nbdPort}/${options.volumeName}`,
    stop: async () => {
      const code = await stopChild(child, STOP_GRACE_MS);
      if (code !== 0) process.stderr.write(`plinthd exited with ${code} on SIGTERM\n`);
    },
  };
}
