import { assertInRange } from '../../blockdev/range.js';
import { PlinthError } from '../../common/plinth-error.js';
import type { BlockCapabilities, BlockSizeHints, ExtentStatus } from '../../blockdev/block-device.js';
import type { DeleteVolumeOptions, Pool, PoolStats, SnapshotInfo, SnapshotStore, VolumeStore } from '../../blockdev/pool/pool-types.js';
import { MAX_SNAPSHOTS_PER_VOLUME } from '../../blockdev/pool/snapshot-store.js';

/**
 * A Pool held in memory, for tests of the layers above the pool (control
 * plane, exports, protocol servers). Thin like the real one: space is taken
 * per extent on first write and given back on trim of a whole extent. It
 * keeps data across close/reopen of a volume, and counts calls so tests can
 * check who flushed and closed what. Snapshots and clones (issue 8) share
 * extent buffers by reference count and copy on write, like the disk pool,
 * so usedBytes counts each buffer once.
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

interface SnapshotData {
  readonly snapshotId: string;
  readonly sizeBytes: number;
  readonly createdAtMs: number;
  readonly extents: ReadonlyMap<number, Buffer>;
  device: MemorySnapshotStore | null;
}

interface VolumeData {
  sizeBytes: number;
  readonly extents: Map<number, Buffer>;
  readonly snapshots: Map<string, SnapshotData>;
  readonly origin: { readonly volumeId: string; readonly snapshotId: string } | null;
}

export class MemoryPool implements Pool {
  readonly poolId = 'memory-pool';
  readonly capacityBytes: number;
  readonly extentSizeBytes: number;
  readonly volumes = new Map<string, VolumeData>();
  readonly openStores = new Map<string, MemoryVolumeStore>();
  /** Every extent buffer held by a volume or snapshot → how many maps hold it. */
  readonly references = new Map<Buffer, number>();
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
    return this.references.size * this.extentSizeBytes;
  }

  /** One more map holds `buffer`. */
  hold(buffer: Buffer): void {
    this.references.set(buffer, (this.references.get(buffer) ?? 0) + 1);
  }

  /** One map lets go of `buffer`; the last one frees it. */
  release(buffer: Buffer): void {
    const count = this.references.get(buffer) ?? 0;
    if (count <= 1) this.references.delete(buffer);
    else this.references.set(buffer, count - 1);
  }

  isShared(buffer: Buffer): boolean {
    return (this.references.get(buffer) ?? 0) > 1;
  }

  async openVolume(volumeId: string, sizeBytes: number): Promise<VolumeStore> {
    this.#assertOpen();
    const open = this.openStores.get(volumeId);
    if (open !== undefined) return open;
    let data = this.volumes.get(volumeId);
    if (data === undefined) {
      data = { sizeBytes, extents: new Map(), snapshots: new Map(), origin: null };
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
  async deleteVolume(volumeId: string, options: DeleteVolumeOptions = {}): Promise<void> {
    this.#assertOpen();
    if (options.closeIfOpen === true) await this.openStores.get(volumeId)?.close();
    if (this.openStores.has(volumeId)) throw new PlinthError('VOLUME_ATTACHED', `volume ${volumeId} is open`);
    const data = this.volumes.get(volumeId);
    if (data === undefined) return;
    for (const snapshot of data.snapshots.values()) this.#assertSnapshotClosed(volumeId, snapshot);
    for (const buffer of data.extents.values()) this.release(buffer);
    for (const snapshot of data.snapshots.values()) for (const buffer of snapshot.extents.values()) this.release(buffer);
    this.volumes.delete(volumeId);
  }

  async createSnapshot(volumeId: string, snapshotId: string): Promise<void> {
    this.#assertOpen();
    const data = this.#volume(volumeId);
    if (data.snapshots.has(snapshotId)) return;
    if (data.snapshots.size >= MAX_SNAPSHOTS_PER_VOLUME) throw new PlinthError('SNAPSHOT_LIMIT', `volume ${volumeId} has too many snapshots`);
    const extents = new Map(data.extents);
    for (const buffer of extents.values()) this.hold(buffer);
    data.snapshots.set(snapshotId, { snapshotId, sizeBytes: data.sizeBytes, createdAtMs: Date.now(), extents, device: null });
  }

  async openSnapshot(volumeId: string, snapshotId: string): Promise<SnapshotStore> {
    this.#assertOpen();
    const snapshot = this.#snapshot(volumeId, snapshotId);
    if (snapshot.device === null || snapshot.device.closed) {
      snapshot.device = new MemorySnapshotStore(volumeId, snapshot, this.extentSizeBytes);
    }
    return snapshot.device;
  }

  async deleteSnapshot(volumeId: string, snapshotId: string): Promise<void> {
    this.#assertOpen();
    const snapshot = this.volumes.get(volumeId)?.snapshots.get(snapshotId);
    if (snapshot === undefined) return;
    this.#assertSnapshotClosed(volumeId, snapshot);
    for (const buffer of snapshot.extents.values()) this.release(buffer);
    this.volumes.get(volumeId)?.snapshots.delete(snapshotId);
  }

  listSnapshots(volumeId: string): SnapshotInfo[] {
    const data = this.volumes.get(volumeId);
    if (data === undefined) return [];
    return [...data.snapshots.values()].map((snapshot) => {
      const exclusive = [...snapshot.extents.values()].filter((buffer) => !this.isShared(buffer)).length;
      return {
        snapshotId: snapshot.snapshotId,
        sizeBytes: snapshot.sizeBytes,
        createdAtMs: snapshot.createdAtMs,
        exclusiveBytes: exclusive * this.extentSizeBytes,
        sharedBytes: (snapshot.extents.size - exclusive) * this.extentSizeBytes,
      };
    });
  }

  async cloneVolume(sourceVolumeId: string, snapshotId: string, newVolumeId: string, sizeBytes?: number): Promise<void> {
    this.#assertOpen();
    const existing = this.volumes.get(newVolumeId);
    if (existing !== undefined) {
      if (existing.origin?.volumeId === sourceVolumeId && existing.origin.snapshotId === snapshotId) return;
      throw new PlinthError('VOLUME_EXISTS', `volume ${newVolumeId} exists`);
    }
    const snapshot = this.#snapshot(sourceVolumeId, snapshotId);
    const size = sizeBytes ?? snapshot.sizeBytes;
    if (size < snapshot.sizeBytes) throw new PlinthError('INVALID_SIZE', `a clone cannot be smaller than its snapshot`);
    const extents = new Map(snapshot.extents);
    for (const buffer of extents.values()) this.hold(buffer);
    this.volumes.set(newVolumeId, { sizeBytes: size, extents, snapshots: new Map(), origin: { volumeId: sourceVolumeId, snapshotId } });
  }

  async revertVolume(volumeId: string, snapshotId: string): Promise<void> {
    this.#assertOpen();
    const snapshot = this.#snapshot(volumeId, snapshotId);
    if (this.openStores.has(volumeId)) throw new PlinthError('VOLUME_ATTACHED', `volume ${volumeId} is open`);
    const data = this.#volume(volumeId);
    for (const buffer of snapshot.extents.values()) this.hold(buffer);
    for (const buffer of data.extents.values()) this.release(buffer);
    data.extents.clear();
    for (const [extent, buffer] of snapshot.extents) data.extents.set(extent, buffer);
  }

  snapshotExtents(volumeId: string, snapshotId: string): number[] {
    return [...this.#snapshot(volumeId, snapshotId).extents.keys()].sort((a, b) => a - b);
  }

  changedExtents(volumeId: string, fromSnapshotId: string, toSnapshotId: string): number[] {
    const from = this.#snapshot(volumeId, fromSnapshotId).extents;
    const to = this.#snapshot(volumeId, toSnapshotId).extents;
    const changed = new Set<number>();
    for (const [extent, buffer] of to) if (from.get(extent) !== buffer) changed.add(extent);
    for (const extent of from.keys()) if (!to.has(extent)) changed.add(extent);
    return [...changed].sort((a, b) => a - b);
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

  #volume(volumeId: string): VolumeData {
    const data = this.volumes.get(volumeId);
    if (data === undefined) throw new PlinthError('VOLUME_NOT_FOUND', `volume ${volumeId} has no store in this pool`);
    return data;
  }

  #snapshot(volumeId: string, snapshotId: string): SnapshotData {
    const snapshot = this.#volume(volumeId).snapshots.get(snapshotId);
    if (snapshot === undefined) throw new PlinthError('SNAPSHOT_NOT_FOUND', `volume ${volumeId} has no snapshot ${snapshotId}`);
    return snapshot;
  }

  #assertSnapshotClosed(volumeId: string, snapshot: SnapshotData): void {
    if (snapshot.device !== null && !snapshot.device.closed) {
      throw new PlinthError('SNAPSHOT_OPEN', `snapshot ${volumeId}@${snapshot.snapshotId} is open`);
    }
  }
}

/** A snapshot's read-only view: the extent buffers it shares are never written (writers copy them first). */
export class MemorySnapshotStore implements SnapshotStore {
  readonly capabilities: BlockCapabilities = { ...CAPABILITIES, readOnly: true, trim: false, writeZeroes: false, fua: false };
  readonly blockSize: BlockSizeHints = { minimumBytes: 512, preferredBytes: 4096, maximumBytes: 32 * 1024 * 1024 };
  readonly snapshotId: string;
  readonly sizeBytes: number;
  closed = false;

  constructor(
    readonly volumeId: string,
    private readonly snapshot: SnapshotData,
    private readonly extentSizeBytes: number,
  ) {
    this.snapshotId = snapshot.snapshotId;
    this.sizeBytes = snapshot.sizeBytes;
  }

  async read(offset: number, target: Buffer): Promise<void> {
    this.#check(offset, target.length);
    forEachExtent(this.extentSizeBytes, offset, target.length, (extent, within, done, length) => {
      const source = this.snapshot.extents.get(extent);
      if (source === undefined) target.fill(0, done, done + length);
      else source.copy(target, done, within, within + length);
    });
  }

  async write(): Promise<void> {
    this.#check(0, 0);
    throw new PlinthError('READ_ONLY', `snapshot ${this.volumeId}@${this.snapshotId} is read-only`);
  }

  async trim(): Promise<void> {
    await this.write();
  }

  async writeZeroes(): Promise<void> {
    await this.write();
  }

  async flush(): Promise<void> {
    this.#check(0, 0);
  }

  async blockStatus(offset: number, lengthBytes: number): Promise<ExtentStatus[]> {
    this.#check(offset, lengthBytes);
    const runs: ExtentStatus[] = [];
    forEachExtent(this.extentSizeBytes, offset, lengthBytes, (extent, _within, _done, length) => {
      const hole = !this.snapshot.extents.has(extent);
      const last = runs.at(-1);
      if (last !== undefined && last.hole === hole) runs[runs.length - 1] = { lengthBytes: last.lengthBytes + length, hole, zero: hole };
      else runs.push({ lengthBytes: length, hole, zero: hole });
    });
    return runs;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  #check(offset: number, lengthBytes: number): void {
    if (this.closed) throw new PlinthError('SHUTTING_DOWN', `snapshot ${this.volumeId}@${this.snapshotId} is closed`);
    assertInRange(offset, lengthBytes, this.sizeBytes);
  }
}

function forEachExtent(extentSize: number, offset: number, lengthBytes: number, visit: (extent: number, within: number, done: number, length: number) => void): void {
  let done = 0;
  while (done < lengthBytes) {
    const position = offset + done;
    const within = position % extentSize;
    const length = Math.min(extentSize - within, lengthBytes - done);
    visit(Math.floor(position / extentSize), within, done, length);
    done += length;
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
      const buffer = this.data.extents.get(extent);
      if (buffer === undefined) return;
      if (length === this.pool.extentSizeBytes) {
        this.data.extents.delete(extent);
        this.pool.release(buffer);
      } else {
        this.#allocate(extent).fill(0, within, within + length);
      }
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

  /** The extent's buffer, writable: a new one on first write, a copy when a snapshot or clone shares it. */
  #allocate(extent: number): Buffer {
    const existing = this.data.extents.get(extent);
    if (existing !== undefined && !this.pool.isShared(existing)) return existing;
    if (this.pool.usedBytes() + this.pool.extentSizeBytes > this.pool.capacityBytes) {
      throw new PlinthError('NO_SPACE', 'the memory pool is full');
    }
    const buffer = existing === undefined ? Buffer.alloc(this.pool.extentSizeBytes) : Buffer.from(existing);
    if (existing !== undefined) this.pool.release(existing);
    this.pool.hold(buffer);
    this.data.extents.set(extent, buffer);
    return buffer;
  }

  #forEachExtent(offset: number, lengthBytes: number, visit: (extent: number, within: number, done: number, length: number) => void): void {
    forEachExtent(this.pool.extentSizeBytes, offset, lengthBytes, visit);
  }
}
