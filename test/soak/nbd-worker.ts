/**
 * The TypeScript side of the soak's python NBD worker (soak-worker-py.ts):
 * one request at a time, each with a deadline. A request that does not
 * answer in time (a frozen owner, a cut network) kills the worker; the next
 * request starts a fresh one, so nothing ever waits without a bound.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { PYTHON } from '../integration/fixtures/replication-cluster.js';
import { SOAK_WORKER_PY } from './soak-worker-py.js';

export type WorkerRequest =
  | { readonly op: 'connect'; readonly uri: string }
  | { readonly op: 'write'; readonly block: number; readonly version: number }
  | { readonly op: 'zero' | 'trim' | 'read'; readonly block: number }
  | { readonly op: 'flush' }
  | { readonly op: 'read-range'; readonly first: number; readonly count: number };

export interface WorkerReply {
  readonly ok: boolean;
  readonly error?: string;
  readonly sizeBytes?: number;
  readonly version?: number;
  readonly garbage?: string;
  readonly blocks?: ReadonlyArray<number | string>;
}

/** Wraps the worker command so a test can run it inside a network namespace. */
export type WorkerSpawner = (command: string, args: readonly string[]) => ChildProcess;

const defaultSpawner: WorkerSpawner = (command, args) => spawn(command, [...args], { stdio: ['pipe', 'pipe', 'pipe'] });

export class NbdWorker {
  readonly #spawner: WorkerSpawner;
  #child: ChildProcess | undefined;
  #lines: AsyncIterator<string> | undefined;
  #stderr = '';
  /** Workers killed at a deadline (reported). */
  timeouts = 0;

  constructor(spawner: WorkerSpawner = defaultSpawner) {
    this.#spawner = spawner;
  }

  /** Send one request; a failure or a missed deadline resolves `{ok: false}` (never throws for I/O reasons). */
  async request(request: WorkerRequest, timeoutMs: number): Promise<WorkerReply> {
    const lines = this.#ensure();
    const child = this.#child;
    if (child?.stdin === null || child === undefined) return { ok: false, error: 'worker has no stdin' };
    child.stdin.write(`${JSON.stringify(request)}\n`);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    try {
      const next = await Promise.race([lines.next(), deadline]);
      if (next === 'timeout') {
        this.timeouts += 1;
        this.close();
        return { ok: false, error: `no answer to ${request.op} within ${timeoutMs} ms (worker killed)` };
      }
      if (next.done === true) {
        const stderr = this.#stderr.slice(-500);
        this.close();
        return { ok: false, error: `worker exited: ${stderr}` };
      }
      return JSON.parse(next.value) as WorkerReply;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Kill the worker (its NBD connection goes with it). */
  close(): void {
    this.#child?.kill('SIGKILL');
    this.#child = undefined;
    this.#lines = undefined;
  }

  #ensure(): AsyncIterator<string> {
    if (this.#lines !== undefined && this.#child !== undefined) return this.#lines;
    const child = this.#spawner(PYTHON, ['-u', '-c', SOAK_WORKER_PY]);
    this.#stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      this.#stderr = (this.#stderr + chunk).slice(-4000);
    });
    // EPIPE after the worker died: kept with its stderr; the pending request resolves through the iterator's end.
    child.stdin?.on('error', (err) => {
      this.#stderr = `${this.#stderr}\nstdin: ${err.message}`.slice(-4000);
    });
    if (child.stdout === null) throw new Error('worker has no stdout pipe');
    this.#child = child;
    this.#lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    return this.#lines;
  }
}
