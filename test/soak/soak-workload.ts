/**
 * The soak's block workload on one volume: seeded random writes, reads,
 * flushes, zeroes and trims through the python NBD worker, one request at a
 * time, every read checked against the volume's BlockModel. It survives
 * failover: a failed request marks its mutation in-flight (either value
 * allowed), drops the connection and re-attaches through whatever node
 * SoakCluster says serves the volume now (the owner, or any live node when
 * the owner is down, which takes it over).
 */
import type { Logger } from 'pino';
import { SeededPrng } from '../../common/prng.js';
import { NbdWorker, type WorkerReply, type WorkerRequest, type WorkerSpawner } from './nbd-worker.js';
import { readingFromWorker } from './soak-block-format.js';
import type { BlockModel, Violation } from './soak-model.js';

export type OpKind = 'write' | 'read' | 'flush' | 'zero' | 'trim';
export const OP_KINDS: readonly OpKind[] = ['write', 'read', 'flush', 'zero', 'trim'];

/** Percent of each kind; the rest of the roll is a read. */
const OP_MIX: ReadonlyArray<readonly [OpKind, number]> = [['write', 45], ['flush', 6], ['zero', 7], ['trim', 7]];
/** Half the operations hit a few hot blocks, so failed writes meet later reads and writes of the same block. */
const HOT_BLOCKS = 32;
const RANGE_READ_BLOCKS = 256;
const RECONNECT_PAUSE_MS = 400;

export interface WorkloadTargets {
  nbdUriFor(volume: string, rng: SeededPrng): Promise<string | undefined>;
}

export interface WorkloadOptions {
  readonly seed: number;
  /** Deadline of one request; past it the worker is killed and the request counts as failed. */
  readonly opTimeoutMs: number;
}

export interface WorkloadModules {
  readonly model: BlockModel;
  readonly targets: WorkloadTargets;
  readonly logger: Logger;
  readonly onViolation: (violation: Violation) => void;
  readonly spawner?: WorkerSpawner;
}

export interface WorkloadStats {
  readonly ok: Record<OpKind, number>;
  readonly failed: Record<OpKind, number>;
  /** Reads (workload and final) compared with the model. */
  readsChecked: number;
  reconnects: number;
  connectFailures: number;
}

export class VolumeWorkload {
  readonly stats: WorkloadStats = { ok: zeroCounts(), failed: zeroCounts(), readsChecked: 0, reconnects: 0, connectFailures: 0 };
  readonly #options: WorkloadOptions;
  readonly #modules: WorkloadModules;
  readonly #rng: SeededPrng;
  readonly #worker: NbdWorker;
  #connected = false;

  constructor(options: WorkloadOptions, modules: WorkloadModules) {
    this.#options = options;
    this.#modules = modules;
    this.#rng = new SeededPrng(options.seed);
    this.#worker = new NbdWorker(modules.spawner);
  }

  get volume(): string {
    return this.#modules.model.volume;
  }

  get workerTimeouts(): number {
    return this.#worker.timeouts;
  }

  /** Run random operations until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      if (!(await this.#connect(signal))) continue;
      await this.#step();
    }
  }

  /**
   * After the faults: reconnect (bounded by `deadlineMs`), FLUSH (so every
   * replica holds what the model expects durably, for the offline compare)
   * and read every block back, each checked against the model.
   */
  async finalCheck(deadlineMs: number): Promise<{ completed: boolean; error?: string }> {
    const signal = AbortSignal.timeout(Math.max(0, deadlineMs - Date.now()));
    const model = this.#modules.model;
    for (let first = 0; first < model.blockCount;) {
      if (signal.aborted) return { completed: false, error: 'final check deadline passed' };
      if (!(await this.#connect(signal))) continue;
      const count = Math.min(RANGE_READ_BLOCKS, model.blockCount - first);
      const reply = await this.#request({ op: 'read-range', first, count });
      if (!reply.ok || reply.blocks === undefined) {
        this.#modules.logger.warn({ error: reply.error }, 'final read failed; reconnecting');
        continue;
      }
      reply.blocks.forEach((value, index) => this.#check(first + index, readingFromWorker(value), 'final read'));
      first += count;
    }
    while (!signal.aborted) {
      if (!(await this.#connect(signal))) continue;
      if ((await this.#request({ op: 'flush' })).ok) {
        this.#worker.close();
        return { completed: true };
      }
    }
    return { completed: false, error: 'final flush deadline passed' };
  }

  close(): void {
    this.#worker.close();
  }

  async #step(): Promise<void> {
    const kind = this.#pickKind();
    const model = this.#modules.model;
    if (kind === 'flush') {
      this.#count(kind, await this.#request({ op: 'flush' }));
      return;
    }
    const block = this.#pickBlock();
    if (kind === 'read') {
      const reply = await this.#request({ op: 'read', block });
      this.#count(kind, reply);
      if (!reply.ok) return;
      this.#check(block, readingFromWorker(reply.garbage ?? reply.version ?? -1), 'workload read');
      return;
    }
    const request: WorkerRequest = kind === 'write' ? { op: 'write', block, version: model.beginWrite(block) } : { op: kind, block };
    if (kind !== 'write') model.beginZero(block);
    const reply = await this.#request(request);
    this.#count(kind, reply);
    if (reply.ok) model.acknowledge(block);
    else model.fail(block);
  }

  #check(block: number, reading: Parameters<BlockModel['check']>[1], phase: string): void {
    this.stats.readsChecked += 1;
    const violation = this.#modules.model.check(block, reading, phase);
    if (violation !== undefined) this.#modules.onViolation(violation);
  }

  async #request(request: WorkerRequest): Promise<WorkerReply> {
    const reply = await this.#worker.request(request, this.#options.opTimeoutMs);
    if (!reply.ok) {
      this.#connected = false;
      this.#worker.close();
      this.#modules.logger.info({ op: request.op, error: reply.error }, 'request failed; will reconnect');
    }
    return reply;
  }

  /** Ensure a connection; false (after a pause) when none could be made this time. */
  async #connect(signal: AbortSignal): Promise<boolean> {
    if (this.#connected) return true;
    const uri = await this.#modules.targets.nbdUriFor(this.volume, this.#rng);
    if (uri !== undefined && !signal.aborted) {
      const reply = await this.#worker.request({ op: 'connect', uri }, this.#options.opTimeoutMs);
      if (reply.ok) {
        this.#connected = true;
        this.stats.reconnects += 1;
        return true;
      }
      this.stats.connectFailures += 1;
      this.#worker.close();
      this.#modules.logger.info({ uri, error: reply.error }, 'connect failed; retrying');
    }
    await new Promise((resolve) => setTimeout(resolve, RECONNECT_PAUSE_MS));
    return false;
  }

  #pickKind(): OpKind {
    let roll = this.#rng.nextInt(100);
    for (const [kind, percent] of OP_MIX) {
      if (roll < percent) return kind;
      roll -= percent;
    }
    return 'read';
  }

  #pickBlock(): number {
    const blocks = this.#modules.model.blockCount;
    return this.#rng.nextInt(2) === 0 ? this.#rng.nextInt(Math.min(HOT_BLOCKS, blocks)) : this.#rng.nextInt(blocks);
  }

  #count(kind: OpKind, reply: WorkerReply): void {
    if (reply.ok) this.stats.ok[kind] += 1;
    else this.stats.failed[kind] += 1;
  }
}

function zeroCounts(): Record<OpKind, number> {
  return { write: 0, read: 0, flush: 0, zero: 0, trim: 0 };
}
