/**
 * Linux's userspace iSCSI target (tgt: tgtd + tgtadm) as the reference peer
 * for the conformance test and the iSCSI benchmark: one target with one
 * file-backed LUN over a sparse file, confined to 127.0.0.1.
 *
 * - `tgtd -f --iscsi portal=127.0.0.1:PORT` binds only that portal (without
 *   it tgtd listens on every address, port 3260).
 * - `-C N` gives this tgtd its own management socket
 *   (/var/run/tgtd/socket.N), so it never touches a system tgtd or another
 *   test's; N is the portal port, which this process holds free.
 * - tgt puts its controller at LUN 0; the disk is LUN 1.
 * - Stopping: delete the target (--force drops sessions), then
 *   `--op delete --mode system` makes tgtd exit (SIGTERM alone does not);
 *   SIGKILL after a grace period; the management socket files are removed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { canConnect, LOOPBACK } from '../../bench/bench-process.js';
import { pickFreePorts } from '../helpers/daemon-harness.js';
import { describeRun, exitsWithin, killAndWait, run, runOk, toolEnv } from './e2e-process.js';

export { LOOPBACK };
export const TGT_TOOLS = ['tgtd', 'tgtadm', 'setpriv'] as const;
/** tgt's LUN 0 is its controller; the file LUN is 1. */
export const TGT_DISK_LUN = 1;

const TGT_SOCKET_DIR = '/var/run/tgtd';
const START_TIMEOUT_MS = 15_000;
const ADMIN_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 5_000;
const MAX_LOG_CHARS = 64_000;

export interface TgtTargetOptions {
  /** Scratch dir owned by the caller; the LUN's backing file goes here. */
  readonly workDir: string;
  readonly sizeBytes: number;
  /** Default `iqn.2026-11.io.plinth.test:tgt`. */
  readonly iqn?: string;
}

export interface TgtTarget {
  readonly iqn: string;
  readonly port: number;
  readonly lun: number;
  /** `iscsi://127.0.0.1:PORT/<iqn>/1`, the URL libiscsi's tools take. */
  readonly url: string;
  readonly backingFile: string;
  /** tgtd's stderr (bounded), for failure messages. */
  log(): string;
  stop(): Promise<void>;
}

async function createSparseFile(path: string, sizeBytes: number): Promise<void> {
  const handle = await open(path, 'w');
  try {
    await handle.truncate(sizeBytes);
  } finally {
    await handle.close();
  }
}

function tgtadm(controlPort: number, args: readonly string[]): Promise<unknown> {
  return runOk('tgtadm', ['-C', String(controlPort), ...args], { timeoutMs: ADMIN_TIMEOUT_MS });
}

/** Until tgtd answers on its management socket and accepts on the portal, or it exits, or the deadline. */
async function waitForTgtd(child: ChildProcess, controlPort: number, port: number, log: () => string): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`tgtd exited (${child.exitCode ?? child.signalCode}) at start:\n${log()}`);
    const status = await run('tgtadm', ['-C', String(controlPort), '--op', 'show', '--mode', 'sys'], { timeoutMs: ADMIN_TIMEOUT_MS });
    if (status.code === 0 && (await canConnect(port))) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`tgtd not ready on ${LOOPBACK}:${port} within ${START_TIMEOUT_MS} ms:\n${log()}`);
}

async function removeSocketFiles(controlPort: number): Promise<void> {
  const base = join(TGT_SOCKET_DIR, `socket.${controlPort}`);
  await Promise.all([rm(base, { force: true }), rm(`${base}.lock`, { force: true })]);
}

async function stopTgtd(child: ChildProcess, controlPort: number): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    // Best effort: whatever fails here, SIGKILL below still ends tgtd.
    const removed = await run('tgtadm', ['-C', String(controlPort), '--lld', 'iscsi', '--op', 'delete', '--mode', 'target', '--tid', '1', '--force'], { timeoutMs: ADMIN_TIMEOUT_MS });
    const ended = await run('tgtadm', ['-C', String(controlPort), '--op', 'delete', '--mode', 'system'], { timeoutMs: ADMIN_TIMEOUT_MS });
    const exited = await exitsWithin(child, STOP_GRACE_MS);
    if (!exited) {
      process.stderr.write(`tgt-fixture: tgtd did not exit on request, killing it (${describeRun(removed)}; ${describeRun(ended)})\n`);
      await killAndWait(child, 'SIGKILL', STOP_GRACE_MS);
    }
  }
  await removeSocketFiles(controlPort);
}

async function configureTarget(controlPort: number, iqn: string, backingFile: string): Promise<void> {
  await tgtadm(controlPort, ['--lld', 'iscsi', '--op', 'new', '--mode', 'target', '--tid', '1', '-T', iqn]);
  await tgtadm(controlPort, ['--lld', 'iscsi', '--op', 'new', '--mode', 'logicalunit', '--tid', '1', '--lun', String(TGT_DISK_LUN), '-b', backingFile]);
  // Any initiator name may log in (the conformance suite uses two).
  await tgtadm(controlPort, ['--lld', 'iscsi', '--op', 'bind', '--mode', 'target', '--tid', '1', '-I', 'ALL']);
}

export async function startTgtTarget(options: TgtTargetOptions): Promise<TgtTarget> {
  const iqn = options.iqn ?? 'iqn.2026-11.io.plinth.test:tgt';
  const backingFile = join(options.workDir, 'tgt-lun1.img');
  await createSparseFile(backingFile, options.sizeBytes);
  const [port] = await pickFreePorts(1);
  if (port === undefined) throw new Error('no free port for tgtd');
  const controlPort = port;
  await removeSocketFiles(controlPort);
  // setpriv (util-linux) execs tgtd with a parent-death signal, so a test runner that dies never leaves tgtd behind.
  const child = spawn('setpriv', ['--pdeathsig', 'KILL', 'tgtd', '-f', '-C', String(controlPort), '--iscsi', `portal=${LOOPBACK}:${port}`], {
    env: toolEnv(),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    // tgtd logs every error it answers (the conformance suite provokes many): keep the latest.
    stderr = (stderr + chunk).slice(-MAX_LOG_CHARS);
  });
  const log = (): string => stderr;
  try {
    await waitForTgtd(child, controlPort, port, log);
    await configureTarget(controlPort, iqn, backingFile);
  } catch (err: unknown) {
    await stopTgtd(child, controlPort);
    throw err;
  }
  let stopped: Promise<void> | undefined;
  return {
    iqn,
    port,
    lun: TGT_DISK_LUN,
    url: `iscsi://${LOOPBACK}:${port}/${iqn}/${TGT_DISK_LUN}`,
    backingFile,
    log,
    stop: () => (stopped ??= stopTgtd(child, controlPort)),
  };
}
