import t from 'tap';
import type { BlockDevice, WriteOptions } from '../../../blockdev/block-device.js';
import { catchUpReplica } from '../../../blockdev/volume/catch-up.js';
import { RangeLock } from '../../../blockdev/volume/range-lock.js';
import { MemoryBlockDevice } from '../../helpers/memory-block-device.js';

/**
 * Catch-up bounds (perf round): chunks larger than the target's largest
 * request are written in pieces it accepts, block status is asked once per
 * chunk when the source answers for all of it, and at most
 * maxParallelChunks chunks are in flight.
 */

const KIB = 1024;
const SIZE = 256 * KIB;

/** Records the largest write and the most writes in flight; writes finish on a later macrotask. */
class WatchedTarget extends MemoryBlockDevice {
  largestWriteBytes = 0;
  inFlight = 0;
  maxInFlight = 0;

  override async write(offset: number, data: Buffer, options?: WriteOptions): Promise<void> {
    if (data.length > this.blockSize.maximumBytes) throw new Error(`write of ${data.length} bytes is over the target's maximum`);
    this.largestWriteBytes = Math.max(this.largestWriteBytes, data.length);
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await new Promise((resolve) => setImmediate(resolve));
      await super.write(offset, data, options);
    } finally {
      this.inFlight -= 1;
    }
  }
}

async function contents(device: BlockDevice): Promise<Buffer> {
  const buffer = Buffer.alloc(device.sizeBytes);
  await device.read(0, buffer);
  return buffer;
}

t.test('chunks are written in pieces the target accepts, with bounded parallelism', async (t) => {
  const source = new MemoryBlockDevice({ sizeBytes: SIZE, chunkBytes: 4 * KIB });
  const data = Buffer.alloc(SIZE);
  for (let index = 0; index < SIZE; index += 1) data[index] = (index * 7 + 3) & 0xff;
  await source.write(0, data);
  await source.writeZeroes(64 * KIB, 8 * KIB, { noHole: false }); // a zero run inside the data
  const target = new WatchedTarget({ sizeBytes: SIZE, blockSize: { maximumBytes: 16 * KIB } });
  const progress = await catchUpReplica(source, target, 'all', { rangeLock: new RangeLock(), chunkBytes: 64 * KIB, maxParallelChunks: 2 });
  t.equal(progress.doneBytes, SIZE);
  t.equal(progress.copiedBytes + progress.zeroedBytes, SIZE);
  t.ok(target.largestWriteBytes <= 16 * KIB, `largest write ${target.largestWriteBytes} fits the target`);
  t.ok(target.maxInFlight <= 2, `at most 2 writes in flight (saw ${target.maxInFlight})`);
  t.ok(target.maxInFlight >= 2, 'chunks do overlap');
  t.ok(source.stats.blockStatusCalls <= SIZE / (64 * KIB), `one block-status question per chunk (${source.stats.blockStatusCalls})`);
  t.same(await contents(target), await contents(source), 'the target equals the source');
});
