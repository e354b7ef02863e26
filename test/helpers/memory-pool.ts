import { assertInRange } from '../../blockdev/range.js';
import { PlinthError } from '../../common/plinth-error.js';
import type { BlockCapabilities, BlockSizeHints, ExtentStatus } from '../../blockdev/block-device.js';
import type { Pool, PoolStats, VolumeStore } from '../../blockdev/pool/pool-types.js';

/**
 * A Pool held in memory, for tests of the layers above the pool (control
 * plane, exports, protocol servers). Thin like the real one: space is taken
 * per extent on first write and given back on trim of a whole extent. It
 * keeps data across close/reopen of a volume, and counts calls so tests can
 * check who flushed and closed what.
 */
export interface MemoryPoolOptions {
  readonly capacityBytes?: number;
  readonly extentSizeBytes?: number;
}

const CAPABILITIES: BlockCapabilities = {
  readOnly: false,
  fua: true,
  trim: true,
  writeZeroes: true,
  fastZero: false,
  blockStatus: true,
  multiConn: true,
};

interface VolumeData {
  sizeBytes: number;
  readonly extents: Map<number, Buffer>;
}

export class MemoryPool implements Pool {
  readonly poolId = 'memory-pool';
  readonly capacityBytes: number;
  readonly extentSizeBytes: number;
  readonly volumes = new Map<string, VolumeData>();
  readonly openStores = new Map<string, MemoryVolumeStore>();
  closed = false;

  constructor(options: MemoryPoolOptions = {}) {
    this.capacityBytes = options.capacityBytes ?? 1024 ** 3;
    this.extentSizeBytes = options.extentSizeBytes ?? 64 * 1024;
  }

  stats(): PoolStats {
    const usedBytes = this.usedBytes();
    return {
      poolId: this.poolId,
      extentSizeBytes: this.extentSizeBytes,
      capacityBytes: this.capacityBytes,
      usedBytes,
      disks: [{ id: 'mem0', path: 'memory', kind: 'file', capacityBytes: this.capacityBytes, usedBytes, extentSizeBytes: this.extentSizeBytes }],
    };
  }

  usedBytes(): number {
    let extents = 0;
    for (const volume of this.volumes.values()) extents += volume.extents.size;
    return extents * this.extentSizeBytes;
  }

  async openVolume(volumeId: string, sizeBytes: number): Promise<VolumeStore> {
    this.#assertOpen();
    const open = this.openStores.get(volumeId);
    if (open !== undefined) return open;
    let data = this.volumes.get(volumeId);
    if (data === undefined) {
      data = { sizeBytes, extents: new Map() };
      this.volumes.set(volumeId, data);
    }
    data.sizeBytes = Math.max(data.sizeBytes, sizeBytes);
    const store = new MemoryVolumeStore(volumeId, data, this, () => this.openStores.delete(volumeId));
    this.openStores.set(volumeId, store);
    return store;
  }

  /** Like the disk pool: a volume never opened here is unknown (VOLUME_NOT_FOUND). */
  async resizeVolume(volumeId: string, sizeBytes: number): Promise<void> {
    this.#assertOpen();
    const data = this.volumes.get(volumeId);
    if (data === undefined) throw new PlinthError('VOLUME_NOT_FOUND', `volume ${volumeId} has no store in this pool`);
    if (sizeBytes < data.sizeBytes) throw new PlinthError('INVALID_SIZE', `volume ${volumeId} cannot shrink`);
    data.sizeBytes = sizeBytes;
  }

  /** Unknown volumes are a no-op, like the disk pool. */
  async deleteVolume(volumeId: string): Promise<void> {
    this.#assertOpen();
    if (this.openStores.has(volumeId)) throw new PlinthError('VOLUME_ATTACHED', `volume ${volumeId} is open`);
    this.volumes.delete(volumeId);
  }

  volumeAllocatedBytes(volumeId: string): number {
    return (this.volumes.get(volumeId)?.extents.size ?? 0) * this.extentSizeBytes;
  }

  async close(): Promise<void> {
    for (const store of [...this.openStores.values()]) await store.close();
    this.closed = true;
  }

  #assertOpen(): void {
    if (this.closed) throw new PlinthError('SHUTTING_DOWN', 'the pool is closed');
  }
}

export class MemoryVolumeStore implements VolumeStore {
  readonly capabilities = CAPABILITIES;
  readonly blockSize: BlockSizeHints = { minimumBytes: 512, preferredBytes: 4096, maximumBytes: 32 * 1024 * 1024 };
  flushCount = 0;
  closed = false;

  constructor(
    readonly volumeId: string,
    private readonly data: VolumeData,
    private readonly pool: MemoryPool,
    private readonly onClose: () => void,
  ) {}

  get sizeBytes(): number {
    return this.data.sizeBytes;
  }

  allocatedBytes(): number {
    return this.data.extents.size * this.pool.extentSizeBytes;
  }

  async read(offset: number, target: Buffer): Promise<void> {
    this.#check(offset, target.length);
    this.#forEachExtent(offset, target.length, (extent, within, done, length) => {
      const source = this.data.extents.get(extent);
      if (source === undefined) target.fill(0, done, done + length);
      else source.copy(target, done, within, within + length);
    });
  }

  async write(offset: number, data: Buffer): Promise<void> {
    this.#check(offset, data.length);
    this.#forEachExtent(offset, data.length, (extent, within, done, length) => {
      data.copy(this.#allocate(extent), within, done, done + length);
    });
  }

  async flush(): Promise<void> {
    this.#check(0, 0);
    this.flushCount += 1;
  }

  async trim(offset: number, lengthBytes: number): Promise<void> {
    await this.writeZeroes(offset, lengthBytes);
  }

  async writeZeroes(offset: number, lengthBytes: number): Promise<void> {
    this.#check(offset, lengthBytes);
    this.#forEachExtent(offset, lengthBytes, (extent, within, _done, length) => {
      if (length === this.pool.extentSizeBytes) this.data.extents.delete(extent);
      else this.data.extents.get(extent)?.fill(0, within, within + length);
    });
  }

  async blockStatus(offset: number, lengthBytes: number): Promise<ExtentStatus[]> {
    this.#check(offset, lengthBytes);
    const runs: ExtentStatus[] = [];
    this.#forEachExtent(offset, lengthBytes, (extent, _within, _done, length) => {
      const hole = !this.data.extents.has(extent);
      const last = runs.at(-1);
      if (last !== undefined && last.hole === hole) runs[runs.length - 1] = { lengthBytes: last.lengthBytes + length, hole, zero: hole };
      else runs.push({ lengthBytes: length, hole, zero: hole });
    });
    return runs;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
    this.onClose();
  }

  #check(offset: number, lengthBytes: number): void {
    if (this.closed) throw new PlinthError('SHUTTING_DOWN', `volume ${this.volumeId} is closed`);
    assertInRange(offset, lengthBytes, this.data.sizeBytes);
  }

  #allocate(extent: number): Buffer {
    let buffer = this.data.extents.get(extent);
    if (buffer === undefined) {
      if (this.pool.usedBytes() + this.pool.extentSizeBytes > this.pool.capacityBytes) {
        throw new PlinthError('NO_SPACE', 'the memory pool is full');
      }
      buffer = Buffer.alloc(this.pool.extentSizeBytes);
      this.data.extents.set(extent, buffer);
    }
    return buffer;
  }

  #forEachExtent(offset: number, lengthBytes: number, visit: (extent: number, within: number, done: number, length: number) => void): void {
    const extentSize = this.pool.extentSizeBytes;
    let done = 0;
    while (done < lengthBytes) {
      const position = offset + done;
      const within = position % extentSize;
      const length = Math.min(extentSize - within, lengthBytes - done);
      visit(Math.floor(position / extentSize), within, done, length);
      done += length;
    }
  }
}
