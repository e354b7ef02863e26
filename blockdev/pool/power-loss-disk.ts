import type { Logger } from 'pino';
import { onPowerCut } from '../../common/failpoints/failpoints.js';
import { PlinthError } from '../../common/plinth-error.js';
import { parseSize } from '../../common/sizes.js';
import { SeededPrng } from '../../common/prng.js';
import type { DiskFileIo, DiskLayer } from './disk-file-io.js';
import { closeFile, fdatasync, readFullySync, writeFullySync } from './fs-callbacks.js';
import { type PowerCutOdds, type PowerCutOutcome, type FileWrite, VolatileWriteCache } from './volatile-write-cache.js';

/**
 * TEST ONLY (issue 7): a pool disk layer that loses power instead of merely
 * dying. Writes stay in a VolatileWriteCache (volatile-write-cache.ts) until
 * the disk is synced; reads see them. fdatasync first writes the cached
 * writes to the file, then fdatasyncs. At a power cut — the `power-cut`
 * failpoint action, or cutPower() in an in-process test — a seeded subset
 * of the cached writes, possibly torn at 512-byte sectors, is written to the
 * file with fs.writeSync, and nothing else ever reaches it: the failpoint
 * then SIGKILLs the process. A plain kill -9 loses every cached write (a
 * cut where nothing landed).
 *
 * Everything here is synchronous on the event loop (file reads included):
 * a test layer favours exact ordering over speed. Only the data disks pass
 * through it; the pool's level metadata (extent maps) writes with sync and
 * is not simulated, which is the ordering under test: pool-flusher.ts syncs
 * the data before it writes the map batch that points at it.
 *
 * Enabled with PLINTH_TEST_DISK=power-loss[:seed=N][:cache=SIZE] (read at
 * pool open, see open-pool.ts), or by passing a PowerLossDiskLayer as
 * OpenPoolOptions.diskLayer.
 */

export const TEST_DISK_ENV = 'PLINTH_TEST_DISK';
export const DEFAULT_MAX_CACHED_BYTES = 256 * 1024 * 1024;

export interface PowerLossDiskOptions {
  /** Seeds which writes survive a cut; each disk opened gets its own stream derived from it. */
  readonly seed: number;
  readonly maxCachedBytes?: number;
  readonly odds?: PowerCutOdds;
}

export interface PowerLossDiskModules {
  readonly logger: Logger;
  /** Where the failpoint `power-cut` action finds us (default: the process registry, failpoints.ts). */
  readonly registerPowerCut?: (handler: () => void) => () => void;
}

export class PowerLossDiskLayer implements DiskLayer {
  readonly name = 'power-loss';
  readonly #options: PowerLossDiskOptions;
  readonly #modules: PowerLossDiskModules;
  readonly #files = new Set<PowerLossFileIo>();
  #opened = 0;

  constructor(options: PowerLossDiskOptions, modules: PowerLossDiskModules) {
    this.#options = options;
    this.#modules = modules;
  }

  wrap(fd: number, path: string): DiskFileIo {
    const prng = new SeededPrng(this.#options.seed * 1009 + this.#opened);
    this.#opened += 1;
    const cache = new VolatileWriteCache({
      maxCachedBytes: this.#options.maxCachedBytes ?? DEFAULT_MAX_CACHED_BYTES,
      ...(this.#options.odds === undefined ? {} : { odds: this.#options.odds }),
    });
    const file = new PowerLossFileIo(fd, path, cache, () => prng.nextFloat(), this.#modules.logger);
    const unregister = (this.#modules.registerPowerCut ?? onPowerCut)(() => file.cutPowerOrReport());
    file.onClose(() => {
      unregister();
      this.#files.delete(file);
    });
    this.#files.add(file);
    return file;
  }

  /** Cut the power of every disk still open through this layer; they fail every later I/O with EIO. */
  cutPower(): PowerCutOutcome[] {
    return [...this.#files].map((file) => file.cutPower());
  }
}

class PowerLossFileIo implements DiskFileIo {
  readonly #fd: number;
  readonly #path: string;
  readonly #cache: VolatileWriteCache;
  readonly #random: () => number;
  readonly #logger: Logger;
  #poweredOff = false;
  #onClose: (() => void) | null = null;

  constructor(fd: number, path: string, cache: VolatileWriteCache, random: () => number, logger: Logger) {
    this.#fd = fd;
    this.#path = path;
    this.#cache = cache;
    this.#random = random;
    this.#logger = logger;
  }

  onClose(handler: () => void): void {
    this.#onClose = handler;
  }

  readSync(target: Buffer, targetOffset: number, lengthBytes: number, position: number): number {
    this.#assertPowered('read');
    const bytesRead = readFullySync(this.#fd, target, targetOffset, lengthBytes, position);
    this.#cache.overlay(target, targetOffset, bytesRead, position);
    return bytesRead;
  }

  read(target: Buffer, targetOffset: number, lengthBytes: number, position: number): Promise<number> {
    return settle(() => this.readSync(target, targetOffset, lengthBytes, position));
  }

  writeSync(source: Buffer, sourceOffset: number, lengthBytes: number, position: number): void {
    this.writevSync([source.subarray(sourceOffset, sourceOffset + lengthBytes)], lengthBytes, position);
  }

  write(source: Buffer, sourceOffset: number, lengthBytes: number, position: number): Promise<void> {
    return settle(() => this.writeSync(source, sourceOffset, lengthBytes, position));
  }

  writevSync(chunks: readonly Buffer[], lengthBytes: number, position: number): void {
    this.#assertPowered('write');
    this.#applyToFile(this.#cache.write(chunks, lengthBytes, position));
  }

  writev(chunks: readonly Buffer[], lengthBytes: number, position: number): Promise<void> {
    return settle(() => this.writevSync(chunks, lengthBytes, position));
  }

  async fdatasync(): Promise<void> {
    this.#assertPowered('fdatasync');
    // Taken and written in one synchronous step: a write completing during
    // the fdatasync below stays cached for the next sync.
    this.#applyToFile(this.#cache.takeForSync());
    await fdatasync(this.#fd);
  }

  async close(): Promise<void> {
    this.#onClose?.();
    this.#onClose = null;
    await closeFile(this.#fd);
  }

  cutPower(): PowerCutOutcome {
    const outcome = this.#poweredOff ? { writes: [], lost: 0, landed: 0, torn: 0 } : this.#cache.powerCut(this.#random);
    this.#poweredOff = true;
    this.#applyToFile(outcome.writes);
    this.#logger.warn(
      { path: this.#path, lost: outcome.lost, landed: outcome.landed, torn: outcome.torn },
      'power-loss disk: power cut, un-synced writes partly lost',
    );
    return outcome;
  }

  /** The failpoint handler: it runs right before SIGKILL, so a failure is reported on stderr and the kill goes on. */
  cutPowerOrReport(): void {
    try {
      const outcome = this.cutPower();
      process.stderr.write(`plinthd: power-loss disk ${this.#path}: ${outcome.landed} writes landed, ${outcome.torn} torn, ${outcome.lost} lost\n`);
    } catch (err) {
      process.stderr.write(`plinthd: power-loss disk ${this.#path}: applying the power cut failed: ${String(err)}\n`);
    }
  }

  #applyToFile(writes: readonly FileWrite[]): void {
    for (const { position, data } of writes) {
      writeFullySync(this.#fd, data, 0, data.length, position);
    }
  }

  #assertPowered(operation: string): void {
    if (this.#poweredOff) {
      throw Object.assign(new Error(`power-loss disk ${this.#path}: ${operation} after the power cut`), { code: 'EIO' });
    }
  }
}

function settle<T>(run: () => T): Promise<T> {
  try {
    return Promise.resolve(run());
  } catch (err) {
    return Promise.reject(err);
  }
}

/**
 * The layer PLINTH_TEST_DISK asks for, or undefined when unset.
 * `power-loss[:seed=N][:cache=SIZE]`; anything else is CONFIG_INVALID.
 */
export function diskLayerFromEnv(env: NodeJS.ProcessEnv, logger: Logger): DiskLayer | undefined {
  const text = env[TEST_DISK_ENV];
  if (text === undefined || text.trim() === '') return undefined;
  const [kind = '', ...optionTexts] = text.trim().split(':');
  if (kind !== 'power-loss') throw invalidEnv(text, `unknown test disk layer ${JSON.stringify(kind)} (power-loss)`);
  let seed = 1;
  let maxCachedBytes = DEFAULT_MAX_CACHED_BYTES;
  for (const optionText of optionTexts) {
    const [key = '', value = ''] = optionText.split('=');
    // Any whole number; the PRNG folds it to 32 bits.
    if (key === 'seed' && /^\d{1,15}$/.test(value)) seed = Number(value);
    else if (key === 'cache' && value !== '') maxCachedBytes = parseSize(value);
    else throw invalidEnv(text, `bad option ${JSON.stringify(optionText)} (seed=N, cache=SIZE)`);
  }
  logger.warn({ seed, maxCachedBytes }, `${TEST_DISK_ENV}: pool disks run through the power-loss test layer (un-synced writes live in memory)`);
  return new PowerLossDiskLayer({ seed, maxCachedBytes }, { logger });
}

function invalidEnv(text: string, why: string): PlinthError {
  return new PlinthError('CONFIG_INVALID', `${TEST_DISK_ENV}=${text}: ${why}`, { value: text });
}
