import type { BlockDevice } from '../../blockdev/block-device.js';
import { PlinthError } from '../../common/plinth-error.js';
import {
  chainSeed,
  DEFAULT_CHUNK_BYTES,
  encodeChunk,
  encodeHeader,
  encodeTrailer,
  MAX_CHUNK_BYTES,
  nextChain,
  SEND_STREAM_VERSION,
  type SendStreamHeader,
  type StreamChunk,
} from './send-stream-codec.js';

/**
 * `plinth volume send` (issue 8): the byte stream of one snapshot, read
 * through its read-only device. Full: every extent the snapshot maps
 * (Pool.snapshotExtents). Incremental: the extents that differ from the
 * base (Pool.changedExtents; a dropped mapping reads as zeroes, so it goes
 * out as zero chunks and the receiver zeroes it). All-zero data goes out
 * as zero chunks too. Chunks never cross an extent and are at most
 * chunkSizeBytes, so the chunk list is a pure function of (extents, sizes):
 * sender and receiver agree on "chunk N" across a resume.
 */
export interface SendStreamIdentity {
  readonly sourceClusterId: string;
  readonly volumeName: string;
  readonly volumeId: string;
  readonly snapshotName: string;
  readonly snapshotId: string;
  readonly base: { readonly snapshotId: string; readonly snapshotName: string } | null;
}

export interface SendStreamOptions extends SendStreamIdentity {
  readonly extentSizeBytes: number;
  readonly chunkSizeBytes?: number;
  /** Start at this chunk (send --from-chunk N): earlier chunks are read and hashed, not sent. */
  readonly fromChunk?: number;
  readonly createdAtMs: number;
}

export interface SendStreamModules {
  /** The snapshot, read-only; its sizeBytes is the volume size the stream carries. */
  readonly device: BlockDevice;
  /** Logical extent indexes to send, ascending (snapshotExtents or changedExtents). */
  readonly extents: readonly number[];
}

export interface PlannedChunk {
  readonly sequence: number;
  readonly offsetBytes: number;
  readonly lengthBytes: number;
}

/** The chunks of a stream, lazily: a 1 TiB volume plans a million chunks without holding them. */
export function* planChunks(extents: readonly number[], extentSizeBytes: number, volumeSizeBytes: number, chunkSizeBytes: number): Generator<PlannedChunk> {
  let sequence = 0;
  let previous = -1;
  for (const extent of extents) {
    if (!Number.isSafeInteger(extent) || extent <= previous) {
      throw new PlinthError('INVALID_ARGUMENT', `send: extent indexes must be ascending integers, got ${extent} after ${previous}`);
    }
    previous = extent;
    const end = Math.min((extent + 1) * extentSizeBytes, volumeSizeBytes);
    for (let offset = extent * extentSizeBytes; offset < end; offset += chunkSizeBytes) {
      yield { sequence, offsetBytes: offset, lengthBytes: Math.min(chunkSizeBytes, end - offset) };
      sequence += 1;
    }
  }
}

export function countChunks(extents: readonly number[], extentSizeBytes: number, volumeSizeBytes: number, chunkSizeBytes: number): number {
  let count = 0;
  for (const extent of extents) {
    const start = extent * extentSizeBytes;
    const end = Math.min(start + extentSizeBytes, volumeSizeBytes);
    if (end > start) count += Math.ceil((end - start) / chunkSizeBytes);
  }
  return count;
}

export function sendStreamHeader(options: SendStreamOptions, volumeSizeBytes: number, extents: readonly number[]): SendStreamHeader {
  const chunkSizeBytes = options.chunkSizeBytes ?? Math.min(DEFAULT_CHUNK_BYTES, options.extentSizeBytes);
  if (!Number.isSafeInteger(chunkSizeBytes) || chunkSizeBytes < 1 || chunkSizeBytes > MAX_CHUNK_BYTES) {
    throw new PlinthError('INVALID_ARGUMENT', `send: chunk size must be 1 to ${MAX_CHUNK_BYTES} bytes, got ${chunkSizeBytes}`);
  }
  const totalChunkCount = countChunks(extents, options.extentSizeBytes, volumeSizeBytes, chunkSizeBytes);
  const firstChunk = options.fromChunk ?? 0;
  if (!Number.isSafeInteger(firstChunk) || firstChunk < 0 || firstChunk > totalChunkCount) {
    throw new PlinthError('INVALID_ARGUMENT', `send: --from-chunk must be 0 to ${totalChunkCount} (the stream's chunk count), got ${firstChunk}`, {
      fromChunk: firstChunk,
      totalChunkCount,
    });
  }
  return {
    version: SEND_STREAM_VERSION,
    sourceClusterId: options.sourceClusterId,
    volumeName: options.volumeName,
    volumeId: options.volumeId,
    snapshotName: options.snapshotName,
    snapshotId: options.snapshotId,
    baseSnapshotId: options.base?.snapshotId ?? null,
    baseSnapshotName: options.base?.snapshotName ?? null,
    volumeSizeBytes,
    extentSizeBytes: options.extentSizeBytes,
    chunkSizeBytes,
    totalChunkCount,
    firstChunk,
    createdAtMs: options.createdAtMs,
  };
}

/**
 * The stream as Buffers, for Readable.from(): pulled one frame at a time,
 * so a slow consumer (socket backpressure) slows the reads; one chunk is
 * read ahead. Throws PlinthError from the device (the consumer aborts).
 */
export async function* sendStream(options: SendStreamOptions, modules: SendStreamModules): AsyncGenerator<Buffer> {
  const { device, extents } = modules;
  const header = sendStreamHeader(options, device.sizeBytes, extents);
  yield encodeHeader(header);
  let chain = chainSeed(header);
  const planned = planChunks(extents, header.extentSizeBytes, header.volumeSizeBytes, header.chunkSizeBytes);
  let next = settled(readNext(device, planned));
  for (;;) {
    const chunk = unwrap(await next);
    if (chunk === undefined) break;
    next = settled(readNext(device, planned));
    const encoded = encodeChunk(chunk);
    chain = nextChain(chain, encoded.digest);
    if (chunk.sequence >= header.firstChunk) yield* encoded.pieces;
  }
  yield encodeTrailer(header.totalChunkCount, chain);
}

const ZEROES = Buffer.alloc(MAX_CHUNK_BYTES);

type Settled<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: unknown };

/** The read-ahead never rejects unobserved when the consumer stops early; its error is rethrown when it is consumed. */
function settled<T>(promise: Promise<T>): Promise<Settled<T>> {
  return promise.then((value) => ({ ok: true, value }), (error: unknown) => ({ ok: false, error }));
}

function unwrap<T>(result: Settled<T>): T {
  if (!result.ok) throw result.error;
  return result.value;
}

async function readNext(device: BlockDevice, planned: Iterator<PlannedChunk>): Promise<StreamChunk | undefined> {
  const step = planned.next();
  if (step.done === true) return undefined;
  const { sequence, offsetBytes, lengthBytes } = step.value;
  // A fresh buffer per chunk: the consumer may still be writing the previous one to its socket.
  const data = Buffer.allocUnsafe(lengthBytes);
  await device.read(offsetBytes, data);
  if (data.equals(ZEROES.subarray(0, lengthBytes))) return { sequence, offsetBytes, lengthBytes, kind: 'zero' };
  return { sequence, offsetBytes, lengthBytes, kind: 'data', data };
}
