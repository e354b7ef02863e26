import { failpoints, hitFailpoint } from '../../common/failpoints/failpoints.js';
import { PlinthError } from '../../common/plinth-error.js';
import type { BlockDevice, ExtentStatus } from '../block-device.js';
import { type ByteRegion, type RegionSet, resolveRegions } from './dirty-regions.js';
import type { RangeLock } from './range-lock.js';

/**
 * Copies regions from a source to a target replica while live writes go on
 * (ARCHITECTURE invariant 4: a replica re-enters the in-sync set only after
 * it caught up completely while receiving live writes). Each chunk is copied
 * under the volume's range lock, so a live write to the same bytes lands
 * either before the copy reads the source (and is copied) or after the copy
 * wrote the target (and reaches the target itself, which is in the
 * "rebuilding" state by then). Ranges the source reports as zero are zeroed
 * on the target instead of copied, so a thin volume rebuilds quickly.
 */

/** What catch-up needs of its source: the controller passes its in-sync read path. */
export interface CatchUpSource {
  read(offset: number, target: Buffer): Promise<void>;
  blockStatus?(offset: number, lengthBytes: number): Promise<ExtentStatus[]>;
}

export interface CatchUpProgress {
  readonly copiedBytes: number;
  readonly zeroedBytes: number;
  readonly doneBytes: number;
  readonly totalBytes: number;
}

export interface CatchUpOptions {
  readonly rangeLock: RangeLock;
  /** Largest unit copied under one lock (default 1 MiB). */
  readonly chunkBytes?: number;
  /** Chunks copied concurrently (default 2). */
  readonly maxParallelChunks?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: CatchUpProgress) => void;
  /** Wraps each chunk; the controller uses it to count the copy as in-flight I/O (pause drains it). */
  readonly runChunk?: (section: () => Promise<void>) => Promise<void>;
}

export const DEFAULT_CATCH_UP_CHUNK_BYTES = 1024 * 1024;

export async function catchUpReplica(
  source: CatchUpSource,
  target: BlockDevice,
  regions: RegionSet,
  options: CatchUpOptions,
): Promise<CatchUpProgress> {
  const chunkBytes = options.chunkBytes ?? DEFAULT_CATCH_UP_CHUNK_BYTES;
  const parallel = options.maxParallelChunks ?? 2;
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes < 1 || parallel < 1) {
    throw new PlinthError('INVALID_ARGUMENT', 'catch-up needs chunkBytes >= 1 and maxParallelChunks >= 1', {
      chunkBytes,
      maxParallelChunks: parallel,
    });
  }
  const concrete = resolveRegions(regions, target.sizeBytes);
  const totalBytes = concrete.reduce((sum, region) => sum + region.lengthBytes, 0);
  const progress = { copiedBytes: 0, zeroedBytes: 0, doneBytes: 0, totalBytes };
  const chunks = chunksOf(concrete, chunkBytes);
  const runChunk = options.runChunk ?? ((section: () => Promise<void>) => section());

  let failed = false;
  const worker = async (): Promise<void> => {
    for (let next = chunks.next(); next.done !== true && !failed; next = chunks.next()) {
      const chunk = next.value;
      try {
        throwIfAborted(options.signal);
        if (failpoints.armed) await hitFailpoint('rebuild.mid-copy');
        await runChunk(() =>
          options.rangeLock.withRange(chunk.offset, chunk.lengthBytes, () => copyChunk(source, target, chunk, progress)),
        );
      } catch (error) {
        failed = true;
        throw error;
      }
      progress.doneBytes += chunk.lengthBytes;
      options.onProgress?.({ ...progress });
    }
  };
  // One shared iterator: each worker takes the next chunk, so at most `parallel` are in flight.
  // allSettled: when this returns or throws, no copy is still touching the target.
  const outcomes = await Promise.allSettled(Array.from({ length: parallel }, () => worker()));
  for (const outcome of outcomes) {
    if (outcome.status === 'rejected') throw outcome.reason;
  }
  return { ...progress };
}

async function copyChunk(
  source: CatchUpSource,
  target: BlockDevice,
  chunk: ByteRegion,
  progress: { copiedBytes: number; zeroedBytes: number },
): Promise<void> {
  let cursor = 0;
  while (cursor < chunk.lengthBytes) {
    const offset = chunk.offset + cursor;
    const remaining = chunk.lengthBytes - cursor;
    const run = await firstRun(source, offset, remaining);
    if (run.zero) {
      await zeroTarget(target, offset, run.lengthBytes);
      progress.zeroedBytes += run.lengthBytes;
    } else {
      const buffer = Buffer.allocUnsafe(run.lengthBytes);
      await source.read(offset, buffer);
      await target.write(offset, buffer);
      progress.copiedBytes += run.lengthBytes;
    }
    cursor += run.lengthBytes;
  }
}

/** The run at `offset`, clipped to `lengthBytes`; "copy everything" when the source has no block status. */
async function firstRun(source: CatchUpSource, offset: number, lengthBytes: number): Promise<ExtentStatus> {
  if (source.blockStatus === undefined) return { lengthBytes, hole: false, zero: false };
  const runs = await source.blockStatus(offset, lengthBytes);
  const first = runs[0];
  if (first === undefined || first.lengthBytes <= 0) {
    throw new PlinthError('IO_ERROR', 'catch-up source returned an empty block status', { offset, lengthBytes });
  }
  return { ...first, lengthBytes: Math.min(first.lengthBytes, lengthBytes) };
}

async function zeroTarget(target: BlockDevice, offset: number, lengthBytes: number): Promise<void> {
  if (target.capabilities.writeZeroes) {
    await target.writeZeroes(offset, lengthBytes);
    return;
  }
  await target.write(offset, Buffer.alloc(lengthBytes));
}

function* chunksOf(regions: readonly ByteRegion[], chunkBytes: number): Generator<ByteRegion, void, undefined> {
  for (const region of regions) {
    for (let done = 0; done < region.lengthBytes; done += chunkBytes) {
      yield { offset: region.offset + done, lengthBytes: Math.min(chunkBytes, region.lengthBytes - done) };
    }
  }
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) {
    throw new PlinthError('SHUTTING_DOWN', 'catch-up aborted', {}, { cause: signal.reason });
  }
}
