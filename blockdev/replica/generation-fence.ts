import { PlinthError } from '../../common/plinth-error.js';
import { decodeU64, encodeU64, generationKey, type ReplicaDatabase, SYNC_WRITE } from './replica-database.js';

/**
 * The highest generation this replica has seen per volume, kept durably
 * (ARCHITECTURE invariant 3): a request with a lower generation is refused
 * with FENCED, so a frozen or partitioned former owner can never write once
 * the new owner has reached this replica, also across restarts.
 *
 * A higher generation is written with sync before it is accepted; requests
 * for the volume that arrive meanwhile wait for that write and are then
 * checked against the new value. `onRaise` lets the server drain in-flight
 * requests of the older generation before the newer one proceeds.
 */
export interface GenerationFenceModules {
  readonly db: ReplicaDatabase;
  /** Called after the new generation is durable, before any request of it proceeds. */
  readonly onRaise?: (volumeId: string, generation: number) => Promise<void>;
}

export class GenerationFence {
  readonly #modules: GenerationFenceModules;
  readonly #highest = new Map<string, number>();
  /** A raise (load or persist) in progress per volume; every check waits behind it. */
  readonly #pending = new Map<string, Promise<void>>();

  constructor(modules: GenerationFenceModules) {
    this.#modules = modules;
  }

  /** Throws FENCED when `generation` is below the highest seen; raises (durably) when above. */
  async admit(volumeId: string, generation: number): Promise<void> {
    for (let pending = this.#pending.get(volumeId); pending !== undefined; pending = this.#pending.get(volumeId)) {
      await pending;
    }
    let highest = this.#highest.get(volumeId);
    if (highest === undefined) {
      await this.#serialise(volumeId, () => this.#load(volumeId));
      return this.admit(volumeId, generation);
    }
    if (generation < highest) {
      throw new PlinthError('FENCED', `volume ${volumeId}: generation ${generation} is fenced by generation ${highest}`, {
        volume: volumeId,
        generation,
        highestGeneration: highest,
      });
    }
    if (generation > highest) {
      await this.#serialise(volumeId, () => this.#raise(volumeId, generation));
      highest = this.#highest.get(volumeId) ?? generation;
      if (generation < highest) return this.admit(volumeId, generation);
    }
  }

  /**
   * Synchronous check against what is in memory: true when a higher
   * generation than `generation` has been admitted. For a caller that cannot
   * await on its fast path (daemon/volume/sole-local-device.ts).
   */
  isFenced(volumeId: string, generation: number): boolean {
    const highest = this.#highest.get(volumeId);
    return highest !== undefined && generation < highest;
  }

  /**
   * Synchronous admit for the data path: true when `generation` is exactly
   * the highest known and no raise is in progress, so admit() would pass
   * without waiting. False means "ask admit()" (it may raise, load or throw
   * FENCED), never "refused".
   */
  admitsNow(volumeId: string, generation: number): boolean {
    return this.#highest.get(volumeId) === generation && !this.#pending.has(volumeId);
  }

  /** The highest generation known for the volume (loads it if needed). */
  async highest(volumeId: string): Promise<number> {
    await this.admit(volumeId, 0).catch((err: unknown) => {
      if (!(err instanceof PlinthError && err.code === 'FENCED')) throw err;
    });
    return this.#highest.get(volumeId) ?? 0;
  }

  async #serialise(volumeId: string, work: () => Promise<void>): Promise<void> {
    const running = this.#pending.get(volumeId);
    if (running !== undefined) return running;
    const promise = work().finally(() => this.#pending.delete(volumeId));
    this.#pending.set(volumeId, promise);
    return promise;
  }

  async #load(volumeId: string): Promise<void> {
    const stored = await this.#modules.db.get(generationKey(volumeId));
    if (stored === undefined) {
      this.#highest.set(volumeId, 0);
      return;
    }
    const value = decodeU64(stored);
    if (value === undefined) {
      throw new PlinthError('METADATA_CORRUPT', `stored generation of volume ${volumeId} is unreadable`, { volumeId });
    }
    this.#highest.set(volumeId, value);
  }

  async #raise(volumeId: string, generation: number): Promise<void> {
    const current = this.#highest.get(volumeId) ?? 0;
    if (generation <= current) return;
    await this.#modules.db.batch([{ type: 'put', key: generationKey(volumeId), value: encodeU64(generation) }], SYNC_WRITE);
    this.#highest.set(volumeId, generation);
    await this.#modules.onRaise?.(volumeId, generation);
  }
}
