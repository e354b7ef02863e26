import { PlinthError } from '../../common/plinth-error.js';
import type { BlockCapabilities, BlockDevice, BlockSizeHints, ExtentStatus, TrimOptions, WriteOptions, ZeroOptions } from '../../blockdev/block-device.js';
import type { VolumeStore } from '../../blockdev/pool/pool-types.js';

/**
 * The device of a volume whose only replica is on this node (issue 4 task
 * "performance"): the pool's VolumeStore itself, so NBD keeps its fast
 * paths (readInline, writeInline, writev) and the single-node benchmark
 * does not pay the replica service's promise layers and activity marks.
 *
 * Why that is safe: with one replica there is no other in-sync replica to
 * resync against at failover (invariant 4 needs two), and every request
 * first checks synchronously that this node still owns the volume at the
 * session's generation in the committed state (invariant 3): once another
 * node's attach has been applied here, nothing more lands. The session that
 * raised the replica fence stays open beside this device; a new owner's OPEN
 * raises that fence again for its own requests.
 */

export interface SoleLocalDeviceOptions {
  readonly name: string;
  readonly generation: number;
}

export interface SoleLocalDeviceModules {
  readonly store: VolumeStore;
  /** True while the committed state says this node owns `name` at `generation` (a sync map lookup). */
  readonly stillOwner: () => boolean;
}

export class SoleLocalDevice implements BlockDevice {
  readonly #options: SoleLocalDeviceOptions;
  readonly #store: VolumeStore;
  readonly #stillOwner: () => boolean;
  #fenced = false;

  constructor(options: SoleLocalDeviceOptions, modules: SoleLocalDeviceModules) {
    this.#options = options;
    this.#store = modules.store;
    this.#stillOwner = modules.stillOwner;
  }

  get sizeBytes(): number {
    return this.#store.sizeBytes;
  }

  get capabilities(): BlockCapabilities {
    return this.#store.capabilities;
  }

  get blockSize(): BlockSizeHints {
    return this.#store.blockSize;
  }

  /** Ownership moved: this device serves nothing any more (the export is replaced on the next open). */
  get fenced(): boolean {
    return this.#fenced;
  }

  read(offset: number, target: Buffer): Promise<void> {
    const fenced = this.#fencedError();
    return fenced === undefined ? this.#store.read(offset, target) : Promise.reject(fenced);
  }

  write(offset: number, data: Buffer, options?: WriteOptions): Promise<void> {
    const fenced = this.#fencedError();
    return fenced === undefined ? this.#store.write(offset, data, options) : Promise.reject(fenced);
  }

  flush(): Promise<void> {
    const fenced = this.#fencedError();
    return fenced === undefined ? this.#store.flush() : Promise.reject(fenced);
  }

  trim(offset: number, lengthBytes: number, options?: TrimOptions): Promise<void> {
    const fenced = this.#fencedError();
    return fenced === undefined ? this.#store.trim(offset, lengthBytes, options) : Promise.reject(fenced);
  }

  writeZeroes(offset: number, lengthBytes: number, options?: ZeroOptions): Promise<void> {
    const fenced = this.#fencedError();
    return fenced === undefined ? this.#store.writeZeroes(offset, lengthBytes, options) : Promise.reject(fenced);
  }

  blockStatus(offset: number, lengthBytes: number): Promise<ExtentStatus[]> {
    const fenced = this.#fencedError();
    return fenced === undefined ? this.#store.blockStatus(offset, lengthBytes) : Promise.reject(fenced);
  }

  readInline(offset: number, target: Buffer): boolean {
    if (this.#store.readInline === undefined) return false;
    this.#assertOwner();
    return this.#store.readInline(offset, target);
  }

  writeInline(offset: number, data: Buffer): boolean {
    if (this.#store.writeInline === undefined) return false;
    this.#assertOwner();
    return this.#store.writeInline(offset, data);
  }

  writev(offset: number, chunks: readonly Buffer[], options?: WriteOptions): Promise<void> {
    const fenced = this.#fencedError();
    if (fenced !== undefined) return Promise.reject(fenced);
    if (this.#store.writev !== undefined) return this.#store.writev(offset, chunks, options);
    return this.#store.write(offset, Buffer.concat(chunks), options);
  }

  #assertOwner(): void {
    const fenced = this.#fencedError();
    if (fenced !== undefined) throw fenced;
  }

  #fencedError(): PlinthError | undefined {
    if (!this.#fenced && this.#stillOwner()) return undefined;
    this.#fenced = true;
    return new PlinthError('FENCED', `volume ${this.#options.name}: generation ${this.#options.generation} is no longer the owner here`, {
      name: this.#options.name,
      generation: this.#options.generation,
    });
  }
}
