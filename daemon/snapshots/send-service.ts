import type { Logger } from 'pino';
import type { BlockDevice } from '../../blockdev/block-device.js';
import type { Pool } from '../../blockdev/pool/pool-types.js';
import { PlinthError } from '../../common/plinth-error.js';
import { findVolume, type ClusterState, type VolumeRecord } from '../state/cluster-state.js';
import { assertNotReceiving } from '../state/receive-commands.js';
import { requireSnapshot, type SnapshotRecord } from '../state/snapshot-commands.js';
import type { SendStreamHeader } from './send-stream-codec.js';
import { sendStream, sendStreamHeader, type SendStreamOptions } from './send-stream-source.js';

/**
 * `GET /v1/volumes/{name}/snapshots/{snap}/send` (issue 8): which extents go
 * out, read from where. On a node whose pool holds the snapshot, the pool
 * says which extents it maps (full) or which differ from the base
 * (incremental, copy-on-write makes that cheap). Any other node reads
 * through a holder (the snapshot readers' SNAPSHOT_READ) and sends every
 * extent of the volume, and for an incremental compares the two snapshots
 * extent by extent first; unmapped ranges go out as small zero chunks.
 * A resume (`fromChunk`) must ask a node that plans the same chunks: the
 * header's chunk count differs otherwise and the receiver refuses it.
 */
export interface SendServiceOptions {
  readonly nodeId: string;
}

export interface OpenedSnapshot {
  readonly device: BlockDevice;
  close(): void;
}

export interface SendServiceModules {
  readonly state: () => ClusterState;
  /** Linearizable read of the state first (Raft ReadIndex); absent: the state is current. */
  readonly barrier?: () => Promise<void>;
  readonly pool: Pool;
  /** Open a snapshot for reading, from this node's pool or a holder (SnapshotReaders.open). */
  readonly openSnapshot: (volume: VolumeRecord, snapshot: SnapshotRecord) => Promise<OpenedSnapshot>;
  readonly logger: Logger;
}

export interface SendRequest {
  readonly volume: string;
  readonly snapshot: string;
  readonly base?: string;
  readonly fromChunk?: number;
}

export interface OpenedSend {
  readonly header: SendStreamHeader;
  /** The bytes; closes the snapshot devices when it ends or fails. */
  readonly stream: AsyncGenerator<Buffer>;
  /** Close the snapshot devices now (the client went away, maybe before the first byte). Idempotent. */
  close(): void;
}

export class SendService {
  readonly #options: SendServiceOptions;
  readonly #modules: SendServiceModules;

  constructor(options: SendServiceOptions, modules: SendServiceModules) {
    this.#options = options;
    this.#modules = modules;
  }

  /** Throws VOLUME_NOT_FOUND, SNAPSHOT_NOT_FOUND, RECEIVE_CONFLICT, INVALID_ARGUMENT (fromChunk) before any byte goes out. */
  async open(request: SendRequest): Promise<OpenedSend> {
    await this.#modules.barrier?.();
    const state = this.#modules.state();
    const volume = findVolume(state, request.volume);
    if (volume === undefined) throw new PlinthError('VOLUME_NOT_FOUND', `volume ${request.volume} does not exist`, { name: request.volume });
    assertNotReceiving(volume);
    const snapshot = requireSnapshot(volume, request.snapshot);
    const base = request.base === undefined ? undefined : requireSnapshot(volume, request.base);
    if (base !== undefined && base.id === snapshot.id) throw new PlinthError('INVALID_ARGUMENT', `send: --base ${base.name} is the snapshot itself`);
    const opened: OpenedSnapshot[] = [];
    try {
      const device = await this.#open(volume, snapshot, opened);
      const extents = await this.#extents(volume, snapshot, base, opened);
      const options: SendStreamOptions = {
        sourceClusterId: state.clusterId ?? 'unknown',
        volumeName: volume.name,
        volumeId: volume.id,
        snapshotName: snapshot.name,
        snapshotId: snapshot.id,
        base: base === undefined ? null : { snapshotId: base.id, snapshotName: base.name },
        extentSizeBytes: this.#modules.pool.extentSizeBytes,
        // The snapshot's time, not the send's: a resumed send must repeat the header (the digest chain starts from it).
        createdAtMs: Date.parse(snapshot.createdAt),
        ...(request.fromChunk === undefined ? {} : { fromChunk: request.fromChunk }),
      };
      const header = sendStreamHeader(options, device.sizeBytes, extents);
      this.#modules.logger.info({ volume: volume.name, snapshot: snapshot.name, base: base?.name, chunks: header.totalChunkCount, fromChunk: header.firstChunk }, 'sending snapshot');
      const close = closeOnce(opened);
      return { header, stream: closingAfter(sendStream(options, { device, extents }), close), close };
    } catch (error) {
      closeOnce(opened)();
      throw error;
    }
  }

  async #open(volume: VolumeRecord, snapshot: SnapshotRecord, opened: OpenedSnapshot[]): Promise<BlockDevice> {
    const handle = await this.#modules.openSnapshot(volume, snapshot);
    opened.push(handle);
    return handle.device;
  }

  #holdsLocally(volume: VolumeRecord, snapshot: SnapshotRecord): boolean {
    return snapshot.holders.includes(this.#options.nodeId) && this.#modules.pool.listSnapshots(volume.id).some((info) => info.snapshotId === snapshot.id);
  }

  async #extents(volume: VolumeRecord, snapshot: SnapshotRecord, base: SnapshotRecord | undefined, opened: OpenedSnapshot[]): Promise<number[]> {
    const { pool } = this.#modules;
    const local = this.#holdsLocally(volume, snapshot) && (base === undefined || this.#holdsLocally(volume, base));
    if (local) return base === undefined ? [...pool.snapshotExtents(volume.id, snapshot.id)] : pool.changedExtents(volume.id, base.id, snapshot.id);
    const extentCount = Math.ceil(snapshot.sizeBytes / pool.extentSizeBytes);
    const all = Array.from({ length: extentCount }, (_, index) => index);
    if (base === undefined) return all;
    const current = opened[0]?.device;
    if (current === undefined) throw new PlinthError('INTERNAL', 'send: the snapshot is not open');
    const previous = await this.#open(volume, base, opened);
    return differingExtents(previous, current, pool.extentSizeBytes, extentCount);
  }
}

/** Extents whose bytes differ between two devices (the non-holder's incremental plan): two reads per extent, one extent at a time. */
async function differingExtents(before: BlockDevice, after: BlockDevice, extentSizeBytes: number, extentCount: number): Promise<number[]> {
  const changed: number[] = [];
  const left = Buffer.alloc(extentSizeBytes);
  const right = Buffer.alloc(extentSizeBytes);
  for (let extent = 0; extent < extentCount; extent++) {
    const offset = extent * extentSizeBytes;
    const length = Math.min(extentSizeBytes, after.sizeBytes - offset);
    const beforeLength = Math.max(0, Math.min(length, before.sizeBytes - offset));
    left.fill(0);
    if (beforeLength > 0) await before.read(offset, left.subarray(0, beforeLength));
    await after.read(offset, right.subarray(0, length));
    if (!left.subarray(0, length).equals(right.subarray(0, length))) changed.push(extent);
  }
  return changed;
}

function closeOnce(opened: readonly OpenedSnapshot[]): () => void {
  let closed = false;
  return () => {
    if (closed) return;
    closed = true;
    for (const handle of opened) handle.close();
  };
}

async function* closingAfter(stream: AsyncGenerator<Buffer>, close: () => void): AsyncGenerator<Buffer> {
  try {
    yield* stream;
  } finally {
    close();
  }
}
