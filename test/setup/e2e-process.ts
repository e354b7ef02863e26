/**
 * Running the real client tools (libnbd's nbdinfo/nbdsh/nbdcopy/nbdfuse,
 * qemu-img, fio, ext4 and loop tools) from e2e tests: every run is bounded in
 * time, its output captured for the failure message, and missing tools turn
 * into a clear skip reason instead of a failure.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';

export interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** The command line, for messages. */
  readonly command: string;
}

export interface RunOptions {
  readonly timeoutMs: number;
  readonly input?: string;
  readonly env?: NodeJS.ProcessEnv;
}

/** Captured output is bounded: a runaway tool must not fill the test's memory. */
const MAX_CAPTURE_CHARS = 1_000_000;

/**
 * PATH for child tools. nbdsh runs `python3 -m nbd`; a python3 from pyenv or a
 * venv earlier in PATH lacks the system's python3-libnbd, so /usr/bin goes
 * first. sbin is added for losetup, mkfs.ext4 and friends.
 */
export function toolPath(): string {
  return ['/usr/bin', '/bin', '/usr/sbin', '/sbin', process.env['PATH'] ?? ''].join(':');
}

export function toolEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...process.env, PATH: toolPath(), ...extra };
}

function hasCommand(name: string): boolean {
  const probe = spawnSync('sh', ['-c', `command -v ${name}`], { env: toolEnv(), stdio: 'ignore' });
  return probe.status === 0;
}

/**
 * Returns a skip reason naming what is missing (and how to get it), or
 * undefined when every tool is present.
 */
export function missingToolsReason(tools: readonly string[]): string | undefined {
  const missing = tools.filter((tool) => !hasCommand(tool));
  if (missing.length === 0) return undefined;
  return `missing tools: ${missing.join(', ')} (run as root: bash test/setup/install-test-tools.sh)`;
}

function commandLine(command: string, args: readonly string[]): string {
  return [command, ...args].map((part) => (/^[\w@%+=:,./-]+$/.test(part) ? part : `'${part}'`)).join(' ');
}

/** Run to completion (or SIGKILL at the deadline); never throws for a non-zero exit. */
export function run(command: string, args: readonly string[], options: RunOptions): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: options.env ?? toolEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      if (stdout.length < MAX_CAPTURE_CHARS) stdout += chunk;
    });
    child.stderr.on('data', (chunk: string) => {
      if (stderr.length < MAX_CAPTURE_CHARS) stderr += chunk;
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, options.timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const note = timedOut ? `\n[killed after ${options.timeoutMs} ms]` : '';
      resolve({ code, signal, stdout, stderr: stderr + note, command: commandLine(command, args) });
    });
    child.stdin.on('error', (err) => {
      // The tool may exit before reading its input (EPIPE); keep the note,
      // its exit status and stderr are what the test checks.
      stderr += `\n[stdin: ${err.message}]`;
    });
    child.stdin.end(options.input ?? '');
  });
}

export function describeRun(result: RunResult): string {
  return `${result.command} → ${result.code ?? result.signal}\nstdout: ${result.stdout.slice(-4000)}\nstderr: ${result.stderr.slice(-4000)}`;
}

/** Run and throw with the full command, status and output unless it exits 0. */
export async function runOk(command: string, args: readonly string[], options: RunOptions): Promise<RunResult> {
  const result = await run(command, args, options);
  if (result.code !== 0) throw new Error(`command failed: ${describeRun(result)}`);
  return result;
}

/** Start a long-running tool (nbdfuse, fio in the background) with captured stderr. */
export function startBackground(command: string, args: readonly string[]): { child: ChildProcess; output: () => string } {
  const child = spawn(command, args, { env: toolEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const collect = (chunk: Buffer): void => {
    if (output.length < MAX_CAPTURE_CHARS) output += chunk.toString('utf8');
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  return { child, output: () => output };
}

/** Resolve when the child has exited (immediately if it already has). */
export function waitExit(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

/** True if the child exits within timeoutMs (the timer never outlives the wait). */
export async function exitsWithin(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  try {
    return await Promise.race([waitExit(child).then(() => true), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

/** Wait for exit up to timeoutMs; SIGKILL after that. */
export async function killAndWait(child: ChildProcess, signal: NodeJS.Signals, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = waitExit(child);
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  await exited;
  clearTimeout(timer);
}
