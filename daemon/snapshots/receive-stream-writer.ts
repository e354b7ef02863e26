import type { Logger } from 'pino';
import type { BlockDevice } from '../../blockdev/block-device.js';
import { PlinthError } from '../../common/plinth-error.js';
import type { SendStreamHeader } from './send-stream-codec.js';
import { SendStreamDecoder, type ResumePoint } from './send-stream-decoder.js';

/**
 * `plinth volume receive` (issue 8), the data half: decode a send stream
 * and write each verified chunk to the target device. The volume stays
 * hidden while this runs (the caller's job); nothing here makes it visible.
 *
 * Resume soundness: every `checkpointEveryBytes` (and at the end) the
 * device is flushed and only then the checkpoint — the next chunk, the
 * digest chain up to it and where the last chunk ended — is saved, so a
 * saved checkpoint never names a chunk whose data might still be lost. A
 * resumed stream continues the chain from the checkpoint and the trailer
 * still verifies the whole stream (send-stream-codec.ts).
 */
export interface ReceiveCheckpoint {
  readonly nextChunk: number;
  /** SHA-256 chain after chunk nextChunk - 1, hex (plain JSON: it travels in a Raft command). */
  readonly chainDigestHex: string;
  readonly minOffsetBytes: number;
}

export interface ReceiveStreamOptions {
  /** Continue a receive: the stream must start at checkpoint.nextChunk (send --from-chunk). */
  readonly resume?: ReceiveCheckpoint;
  /** Flush and checkpoint after this many bytes of chunks; default 16 MiB. */
  readonly checkpointEveryBytes?: number;
  /** Writes in flight at once (they never overlap: chunks are disjoint); default DEFAULT_MAX_WRITES_IN_FLIGHT. */
  readonly maxWritesInFlight?: number;
}

export interface ReceiveStreamModules {
  /**
   * Called once with the verified header, before any chunk is written:
   * check it fits the target (name, base snapshot, resume identity) and
   * return the device to write to (already sized to header.volumeSizeBytes).
   */
  readonly openTarget: (header: SendStreamHeader) => Promise<BlockDevice>;
  /** Durably record progress (after a flush covered every chunk before it). */
  readonly saveCheckpoint: (checkpoint: ReceiveCheckpoint) => Promise<void>;
  readonly logger: Logger;
}

export interface ReceiveOutcome {
  readonly header: SendStreamHeader;
  readonly chunkCount: number;
  readonly streamDigestHex: string;
  /** Chunks written by this call (fewer than chunkCount after a resume). */
  readonly chunksWritten: number;
  readonly bytesWritten: number;
}

/** A flush of every replica and one Raft entry per 16 MiB: cheap, and an interrupted 1 GiB copy loses at most 16 MiB. */
export const DEFAULT_CHECKPOINT_EVERY_BYTES = 16 * 1024 * 1024;
/** 1 MiB chunks: 16 in flight keep the replicas' queues busy and bound memory to 16 MiB plus one frame. */
export const DEFAULT_MAX_WRITES_IN_FLIGHT = 16;

export function resumePointOf(checkpoint: ReceiveCheckpoint): ResumePoint {
  if (!/^[0-9a-f]{64}$/.test(checkpoint.chainDigestHex)) {
    throw new PlinthError('RECEIVE_CONFLICT', 'receive: the saved checkpoint has no valid chain digest; start the receive again');
  }
  return { nextChunk: checkpoint.nextChunk, chainDigest: Buffer.from(checkpoint.chainDigestHex, 'hex'), minOffsetBytes: checkpoint.minOffsetBytes };
}

/** Receive a whole stream; throws the decoder's STREAM_* errors or the target's. Progress up to the last checkpoint is kept. */
export async function receiveStream(body: AsyncIterable<Buffer | Uint8Array>, options: ReceiveStreamOptions, modules: ReceiveStreamModules): Promise<ReceiveOutcome> {
  const decoder = new SendStreamDecoder(options.resume === undefined ? {} : { resume: resumePointOf(options.resume) });
  const writer = new ChunkWriter(options, modules);
  for await (const piece of body) {
    const bytes = Buffer.isBuffer(piece) ? piece : Buffer.from(piece.buffer, piece.byteOffset, piece.byteLength);
    for (const event of decoder.push(bytes)) {
      if (event.type === 'header') await writer.open(event.header);
      else if (event.type === 'chunk') await writer.write(event.chunk, event.chain);
      else return writer.finish(event.chunkCount, event.streamDigest);
    }
  }
  await writer.drain();
  decoder.finish();
  throw new PlinthError('INTERNAL', 'receive: the decoder accepted a stream without a trailer');
}

class ChunkWriter {
  readonly #modules: ReceiveStreamModules;
  readonly #checkpointEveryBytes: number;
  readonly #maxInFlight: number;
  readonly #inFlight = new Set<Promise<void>>();
  #failure: unknown;
  #header: SendStreamHeader | undefined;
  #device: BlockDevice | undefined;
  #bytesSinceCheckpoint = 0;
  #chunksWritten = 0;
  #bytesWritten = 0;
  #last: ReceiveCheckpoint | undefined;

  constructor(options: ReceiveStreamOptions, modules: ReceiveStreamModules) {
    this.#modules = modules;
    this.#checkpointEveryBytes = options.checkpointEveryBytes ?? DEFAULT_CHECKPOINT_EVERY_BYTES;
    this.#maxInFlight = options.maxWritesInFlight ?? DEFAULT_MAX_WRITES_IN_FLIGHT;
  }

  async open(header: SendStreamHeader): Promise<void> {
    this.#header = header;
    this.#device = await this.#modules.openTarget(header);
    if (this.#device.sizeBytes < header.volumeSizeBytes) {
      throw new PlinthError('INTERNAL', `receive: target device has ${this.#device.sizeBytes} bytes, the stream needs ${header.volumeSizeBytes}`);
    }
    this.#modules.logger.info({ volume: header.volumeName, snapshot: header.snapshotName, firstChunk: header.firstChunk, totalChunks: header.totalChunkCount }, 'receiving send stream');
  }

  async write(chunk: { sequence: number; offsetBytes: number; lengthBytes: number; kind: 'data' | 'zero'; data?: Buffer }, chain: Buffer): Promise<void> {
    const device = this.#device;
    if (device === undefined) throw new PlinthError('INTERNAL', 'receive: chunk before the target was opened');
    while (this.#inFlight.size >= this.#maxInFlight) await Promise.race(this.#inFlight);
    this.#throwIfFailed();
    const io = chunk.data === undefined ? device.writeZeroes(chunk.offsetBytes, chunk.lengthBytes) : device.write(chunk.offsetBytes, chunk.data);
    const tracked: Promise<void> = io.then(
      () => { this.#inFlight.delete(tracked); },
      (error: unknown) => { this.#inFlight.delete(tracked); this.#failure ??= error; },
    );
    this.#inFlight.add(tracked);
    this.#chunksWritten += 1;
    this.#bytesWritten += chunk.lengthBytes;
    this.#bytesSinceCheckpoint += chunk.lengthBytes;
    this.#last = { nextChunk: chunk.sequence + 1, chainDigestHex: chain.toString('hex'), minOffsetBytes: chunk.offsetBytes + chunk.lengthBytes };
    if (this.#bytesSinceCheckpoint >= this.#checkpointEveryBytes) await this.#checkpoint();
  }

  async finish(chunkCount: number, streamDigest: Buffer): Promise<ReceiveOutcome> {
    const header = this.#header;
    if (header === undefined) throw new PlinthError('INTERNAL', 'receive: trailer before header');
    await this.#checkpoint();
    return { header, chunkCount, streamDigestHex: streamDigest.toString('hex'), chunksWritten: this.#chunksWritten, bytesWritten: this.#bytesWritten };
  }

  /** Wait for writes in flight (a truncated stream keeps what reached the last checkpoint). */
  async drain(): Promise<void> {
    await Promise.all(this.#inFlight);
  }

  async #checkpoint(): Promise<void> {
    await this.drain();
    this.#throwIfFailed();
    const device = this.#device;
    if (device === undefined) return;
    await device.flush();
    this.#bytesSinceCheckpoint = 0;
    if (this.#last !== undefined) await this.#modules.saveCheckpoint(this.#last);
  }

  #throwIfFailed(): void {
    if (this.#failure !== undefined) throw this.#failure;
  }
}
