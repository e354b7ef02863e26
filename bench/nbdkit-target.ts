/**
 * The peer: `nbdkit file` over a sparse file of the same kind Plinth's pool
 * uses, on loopback. `--exit-with-parent` so a crashed benchmark never leaves
 * it behind.
 */
import { spawn } from 'node:child_process';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort, LOOPBACK, stopChild, waitForListener } from './bench-process.js';

export interface BenchTarget {
  readonly name: string;
  readonly uri: string;
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = 15_000;
const STOP_GRACE_MS = 5_000;

export async function createSparseFile(path: string, sizeBytes: number): Promise<void> {
  const handle = await open(path, 'w');
  try {
    await handle.truncate(sizeBytes);
  } finally {
    await handle.close();
  }
}

export async function startNbdkitTarget(workDir: string, sizeBytes: number): Promise<BenchTarget> {
  const filePath = join(workDir, 'nbdkit.img');
  await createSparseFile(filePath, sizeBytes);
  const port = await freePort();
  const child = spawn(
    'nbdkit',
    ['-f', '--exit-with-parent', '-i', LOOPBACK, '-p', String(port), 'file', filePath],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  await waitForListener(port, child, START_TIMEOUT_MS);
  return {
    name: 'nbdkit',
    // nbdkit's file plugin serves one export whatever the name.
    uri: `nbd://${LOOPBACK}:${port}/`,
    stop: async () => {
      await stopChild(child, STOP_GRACE_MS);
    },
  };
}
