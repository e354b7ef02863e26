/**
 * Per-test scaffolding for daemon e2e tests: a temp work dir and a daemon,
 * both torn down by the test (tap runs teardowns newest first, and stops at
 * the first one that throws, so every teardown here swallows and reports its
 * own problems instead of throwing).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { E2eDaemon } from './e2e-daemon.js';

export async function makeWorkDir(t: Test, label: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `plinth-e2e-${label}-`));
  t.teardown(async () => {
    try {
      await rm(dir, { recursive: true, force: true });
    } catch (err: unknown) {
      t.comment(`teardown: could not remove ${dir}: ${String(err)}`);
    }
  });
  return dir;
}

/**
 * Start a daemon over sparse file disks in workDir (`name:SIZE` each) and
 * register its teardown. On failure the test output gets the daemon's log.
 */
export async function startDaemon(t: Test, workDir: string, disks: readonly string[]): Promise<E2eDaemon> {
  const daemon = await E2eDaemon.start(t, { workDir, disks: disks.map((disk) => join(workDir, disk)) });
  // The harness SIGKILLs whatever is still running at teardown; this stops
  // gracefully first and, when the test failed, prints the daemon's log.
  t.teardown(async () => {
    try {
      const status = await daemon.stop();
      if (!t.passing()) t.comment(`daemon exit ${status.code ?? status.signal}; log tail:\n${daemon.logs().slice(-6000)}`);
    } catch (err: unknown) {
      t.comment(`teardown: stopping daemon: ${String(err)}`);
    }
  });
  return daemon;
}
