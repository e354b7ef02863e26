/**
 * An NBD export turned into a mounted ext4 filesystem without the kernel NBD
 * client: nbdfuse exposes the export as `<fuse-dir>/nbd`, losetup makes that
 * file a block device, mount puts it in the tree (README "Put a filesystem on
 * it").
 *
 * Teardown is the point of this file: whatever happens to the test (an
 * assertion fails, the daemon is killed under the mount), `detach()` undoes
 * every step that was done, newest first, each step tolerant of the others
 * having failed, so no mount, loop device or fuse mount outlives the test.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { describeRun, exitsWithin, killAndWait, run, runOk, startBackground } from './e2e-process.js';

const STEP_TIMEOUT_MS = 30_000;
const NBDFUSE_READY_TIMEOUT_MS = 15_000;

export interface BlockStackPaths {
  readonly fuseDir: string;
  readonly mountDir: string;
  readonly pidFile: string;
}

type UndoStep = { readonly name: string; readonly undo: () => Promise<void> };

/** Why the nbdfuse + loop + mount stack cannot run here, or undefined if it can. */
export function blockStackUnavailableReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root for losetup and mount';
  if (!existsSync('/dev/fuse')) return '/dev/fuse is unavailable (no FUSE in this kernel/container)';
  if (!existsSync('/dev/loop-control')) return '/dev/loop-control is unavailable (no loop devices)';
  return undefined;
}

export class BlockStack {
  readonly paths: BlockStackPaths;
  private readonly undoSteps: UndoStep[] = [];
  private nbdfuse: ChildProcess | undefined;
  private nbdfuseOutput: (() => string) | undefined;
  loopDevice: string | undefined;

  constructor(workDir: string, label: string) {
    this.paths = {
      fuseDir: join(workDir, `${label}-fuse`),
      mountDir: join(workDir, `${label}-mnt`),
      pidFile: join(workDir, `${label}-nbdfuse.pid`),
    };
  }

  /** nbdfuse + losetup: returns the loop device backed by the export. */
  async attach(uri: string): Promise<string> {
    await mkdir(this.paths.fuseDir, { recursive: true });
    await rm(this.paths.pidFile, { force: true });
    const { child, output } = startBackground('nbdfuse', ['-P', this.paths.pidFile, this.paths.fuseDir, uri]);
    this.nbdfuse = child;
    this.nbdfuseOutput = output;
    this.undoSteps.push({ name: 'nbdfuse', undo: () => this.stopNbdfuse() });
    await this.waitNbdfuseReady();
    const loop = await runOk('losetup', ['-f', '--show', join(this.paths.fuseDir, 'nbd')], { timeoutMs: STEP_TIMEOUT_MS });
    const loopDevice = loop.stdout.trim();
    this.loopDevice = loopDevice;
    this.undoSteps.push({ name: `losetup -d ${loopDevice}`, undo: () => this.detachLoop(loopDevice) });
    return loopDevice;
  }

  async mount(): Promise<void> {
    const device = this.requireLoop();
    await mkdir(this.paths.mountDir, { recursive: true });
    await runOk('mount', [device, this.paths.mountDir], { timeoutMs: STEP_TIMEOUT_MS });
    this.undoSteps.push({ name: `umount ${this.paths.mountDir}`, undo: () => this.unmount() });
  }

  requireLoop(): string {
    if (this.loopDevice === undefined) throw new Error('block stack is not attached');
    return this.loopDevice;
  }

  /** Undo every step done so far, newest first; never throws. Returns problems seen. */
  async detach(): Promise<string[]> {
    const problems: string[] = [];
    while (this.undoSteps.length > 0) {
      const step = this.undoSteps.pop();
      if (step === undefined) break;
      try {
        await step.undo();
      } catch (err: unknown) {
        problems.push(`${step.name}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    this.loopDevice = undefined;
    return problems;
  }

  private async waitNbdfuseReady(): Promise<void> {
    const deadline = Date.now() + NBDFUSE_READY_TIMEOUT_MS;
    const child = this.nbdfuse;
    while (Date.now() < deadline) {
      if (child === undefined || child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`nbdfuse exited before it was ready: ${this.nbdfuseOutput?.() ?? ''}`);
      }
      if (existsSync(this.paths.pidFile) && (await readFile(this.paths.pidFile, 'utf8')).trim() !== '') return;
      await delay(50);
    }
    throw new Error(`nbdfuse not ready within ${NBDFUSE_READY_TIMEOUT_MS} ms: ${this.nbdfuseOutput?.() ?? ''}`);
  }

  private async unmount(): Promise<void> {
    if (!(await isMountPoint(this.paths.mountDir))) return;
    // Lazy: the server under the filesystem may be dead, and a plain umount
    // would then block on I/O that can never complete.
    const result = await run('umount', ['-l', this.paths.mountDir], { timeoutMs: STEP_TIMEOUT_MS });
    if (result.code !== 0 && (await isMountPoint(this.paths.mountDir))) throw new Error(describeRun(result));
  }

  private async detachLoop(device: string): Promise<void> {
    const result = await run('losetup', ['-d', device], { timeoutMs: STEP_TIMEOUT_MS });
    if (result.code === 0) return;
    const still = await run('losetup', ['-j', join(this.paths.fuseDir, 'nbd')], { timeoutMs: STEP_TIMEOUT_MS });
    if (still.stdout.includes(`${device}:`)) throw new Error(describeRun(result));
  }

  private async stopNbdfuse(): Promise<void> {
    if (await isMountPoint(this.paths.fuseDir)) {
      // -z (lazy) because a loop device or a lazily unmounted ext4 may still
      // hold the file; nbdfuse exits once the kernel lets go.
      const result = await run('fusermount3', ['-u', '-z', this.paths.fuseDir], { timeoutMs: STEP_TIMEOUT_MS });
      if (result.code !== 0) await abortFuseConnection(this.paths.fuseDir);
    }
    const child = this.nbdfuse;
    if (child !== undefined) {
      if (!(await exitsWithin(child, 5_000))) await killAndWait(child, 'SIGTERM', 5_000);
    }
    if (await isMountPoint(this.paths.fuseDir)) throw new Error(`fuse mount ${this.paths.fuseDir} still present`);
  }
}

/** True when /proc/self/mountinfo lists the directory as a mount point. */
export async function isMountPoint(dir: string): Promise<boolean> {
  const mountInfo = await readFile('/proc/self/mountinfo', 'utf8');
  const escaped = dir.replace(/ /g, '\\040');
  return mountInfo.split('\n').some((line) => line.split(' ')[4] === escaped);
}

/** Last resort when fusermount3 fails: abort the connection through fusectl. */
async function abortFuseConnection(dir: string): Promise<void> {
  const mountInfo = await readFile('/proc/self/mountinfo', 'utf8');
  const line = mountInfo.split('\n').find((entry) => entry.split(' ')[4] === dir);
  const minor = line?.split(' ')[2]?.split(':')[1];
  const connections = '/sys/fs/fuse/connections';
  if (minor === undefined || !existsSync(connections)) return;
  if ((await readdir(connections)).includes(minor)) await writeFile(join(connections, minor, 'abort'), '1');
}
