import { createHash } from 'node:crypto';
import t from 'tap';
import { pino } from 'pino';
import type { BlockDevice } from '../../../blockdev/block-device.js';
import { receiveStream, type ReceiveCheckpoint } from '../../../daemon/snapshots/receive-stream-writer.js';
import { sendStream, type SendStreamOptions } from '../../../daemon/snapshots/send-stream-source.js';
import { MemoryBlockDevice } from '../../helpers/memory-block-device.js';
import { MemoryPool } from '../../helpers/memory-pool.js';

/**
 * send → receive through the Pool interface (issue 8): full and incremental
 * copies read back equal; a flipped byte is refused before it is written;
 * a truncated transfer resumes from the durable checkpoint and verifies.
 */

const EXTENT = 64 * 1024;
const SIZE = 32 * EXTENT;
const logger = pino({ level: 'silent' });

async function digestOf(device: BlockDevice): Promise<string> {
  const hash = createHash('sha256');
  const buffer = Buffer.alloc(EXTENT);
  for (let offset = 0; offset < device.sizeBytes; offset += EXTENT) {
    await device.read(offset, buffer);
    hash.update(buffer);
  }
  return hash.digest('hex');
}

function pattern(length: number, seed: number): Buffer {
  const data = Buffer.alloc(length);
  for (let i = 0; i < length; i++) data[i] = (i * 31 + seed * 17 + (i >> 9)) & 0xff;
  return data;
}

/** Source volume "src" with snapshots s1 and s2 (s2: overwrites, a trimmed extent, a partial write). */
async function sourcePool(): Promise<MemoryPool> {
  const pool = new MemoryPool({ extentSizeBytes: EXTENT });
  const volume = await pool.openVolume('src', SIZE);
  await volume.write(0, pattern(5 * EXTENT, 1));
  await volume.write(10 * EXTENT + 512, pattern(3 * EXTENT, 2));
  await volume.write(31 * EXTENT, pattern(EXTENT, 3));
  await pool.createSnapshot('src', 's1');
  await volume.write(2 * EXTENT + 4096, pattern(8192, 4));
  await volume.trim(11 * EXTENT, EXTENT);
  await volume.write(20 * EXTENT, pattern(EXTENT, 5));
  await pool.createSnapshot('src', 's2');
  await volume.write(0, pattern(EXTENT, 6)); // after s2: never sent
  return pool;
}

const IDENTITY = { sourceClusterId: 'cluster-a', volumeName: 'src', volumeId: 'src', extentSizeBytes: EXTENT, createdAtMs: 1_790_000_000_000 } as const;

function send(pool: MemoryPool, snapshotId: string, baseId: string | null, extra: Partial<SendStreamOptions> = {}): (device: BlockDevice) => AsyncGenerator<Buffer> {
  const extents = baseId === null ? [...pool.snapshotExtents('src', snapshotId)] : pool.changedExtents('src', baseId, snapshotId);
  const options: SendStreamOptions = {
    ...IDENTITY, snapshotName: snapshotId, snapshotId, base: baseId === null ? null : { snapshotId: baseId, snapshotName: baseId }, chunkSizeBytes: 16 * 1024, ...extra,
  };
  return (device) => sendStream(options, { device, extents });
}

async function collect(stream: AsyncGenerator<Buffer>): Promise<Buffer> {
  const pieces: Buffer[] = [];
  for await (const piece of stream) pieces.push(piece);
  return Buffer.concat(pieces);
}

async function* inPieces(bytes: Buffer, pieceBytes = 10_000): AsyncGenerator<Buffer> {
  for (let at = 0; at < bytes.length; at += pieceBytes) yield bytes.subarray(at, at + pieceBytes);
}

t.test('full then incremental: the received volume equals each snapshot', async (t) => {
  const source = await sourcePool();
  const target = new MemoryPool({ extentSizeBytes: EXTENT });
  const s1 = await source.openSnapshot('src', 's1');
  const full = await collect(send(source, 's1', null)(s1));
  const dst = await target.openVolume('dst', SIZE);
  const checkpoints: ReceiveCheckpoint[] = [];
  const outcome = await receiveStream(inPieces(full), { checkpointEveryBytes: 4 * EXTENT }, {
    openTarget: async (header) => {
      t.equal(header.volumeSizeBytes, SIZE);
      return dst;
    },
    saveCheckpoint: async (checkpoint) => { checkpoints.push(checkpoint); },
    logger,
  });
  t.equal(await digestOf(dst), await digestOf(s1), 'full copy equals s1');
  t.equal(outcome.chunkCount, outcome.chunksWritten);
  t.ok(checkpoints.length >= 2, 'checkpoints along the way and at the end');
  t.equal(checkpoints.at(-1)?.nextChunk, outcome.chunkCount);

  const s2 = await source.openSnapshot('src', 's2');
  const incremental = await collect(send(source, 's2', 's1')(s2));
  t.ok(incremental.length < full.length, 'the incremental stream carries only changed extents');
  const result = await receiveStream(inPieces(incremental, 777), {}, { openTarget: async () => dst, saveCheckpoint: async () => undefined, logger });
  t.equal(result.header.baseSnapshotId, 's1');
  t.equal(await digestOf(dst), await digestOf(s2), 'after the incremental, equals s2 (trimmed extent zeroed)');
});

t.test('a flipped data byte is refused before that chunk is written; checkpoints stop before it', async (t) => {
  const source = await sourcePool();
  const s1 = await source.openSnapshot('src', 's1');
  const good = await collect(send(source, 's1', null)(s1));
  const bad = Buffer.from(good);
  const at = Math.floor(good.length * 0.6);
  bad[at] = (bad[at] ?? 0) ^ 0x20;
  const target = new MemoryPool({ extentSizeBytes: EXTENT });
  const dst = await target.openVolume('dst', SIZE);
  const checkpoints: ReceiveCheckpoint[] = [];
  await t.rejects(
    receiveStream(inPieces(bad), { checkpointEveryBytes: EXTENT }, { openTarget: async () => dst, saveCheckpoint: async (c) => { checkpoints.push(c); }, logger }),
    { code: 'STREAM_CHECKSUM_MISMATCH' },
  );
  const last = checkpoints.at(-1);
  t.ok(last !== undefined && last.minOffsetBytes <= SIZE, 'progress before the bad chunk was kept');
});

t.test('truncated transfer resumes from the checkpoint (send --from-chunk) and verifies the whole stream', async (t) => {
  const source = await sourcePool();
  const s2 = await source.openSnapshot('src', 's2');
  const stream = send(source, 's2', null);
  const full = await collect(stream(s2));
  const target = new MemoryPool({ extentSizeBytes: EXTENT });
  const dst = await target.openVolume('dst', SIZE);
  let saved: ReceiveCheckpoint | undefined;
  const modules = { openTarget: async () => dst, saveCheckpoint: async (c: ReceiveCheckpoint) => { saved = c; }, logger };
  await t.rejects(receiveStream(inPieces(full.subarray(0, Math.floor(full.length / 2))), { checkpointEveryBytes: 2 * EXTENT }, modules), { code: 'STREAM_TRUNCATED' });
  if (saved === undefined) throw new Error('no checkpoint saved before the cut');
  const resumeAt = saved;
  t.ok(resumeAt.nextChunk > 0, `checkpoint at chunk ${resumeAt.nextChunk}`);
  // The receiver's writes after the checkpoint are simply written again.
  const rest = await collect(send(source, 's2', null, { fromChunk: resumeAt.nextChunk })(s2));
  const outcome = await receiveStream(inPieces(rest, 4099), { resume: resumeAt }, modules);
  t.equal(outcome.header.firstChunk, resumeAt.nextChunk);
  t.equal(await digestOf(dst), await digestOf(s2), 'resumed copy equals s2');

  const wrongStart = await collect(send(source, 's2', null, { fromChunk: resumeAt.nextChunk + 1 })(s2));
  await t.rejects(receiveStream(inPieces(wrongStart), { resume: resumeAt }, modules), { code: 'STREAM_OUT_OF_ORDER' }, 'a stream resuming elsewhere is refused');
});

t.test('a failing target write stops the receive and no checkpoint covers it', async (t) => {
  const source = await sourcePool();
  const s1 = await source.openSnapshot('src', 's1');
  const full = await collect(send(source, 's1', null)(s1));
  const failing = new MemoryBlockDevice({ sizeBytes: SIZE });
  let writes = 0;
  const write = failing.write.bind(failing);
  // The sixth data write fails (MemoryBlockDevice's failure injection, armed just in time).
  failing.write = async (offset, data, options) => {
    writes += 1;
    if (writes === 6) failing.failNext('write', new Error('disk gone'));
    return write(offset, data, options);
  };
  const checkpoints: ReceiveCheckpoint[] = [];
  await t.rejects(receiveStream(inPieces(full), { checkpointEveryBytes: 2 * 16 * 1024 }, { openTarget: async () => failing, saveCheckpoint: async (c) => { checkpoints.push(c); }, logger }), { message: 'disk gone' });
  t.ok(checkpoints.every((checkpoint) => checkpoint.nextChunk <= 5), 'no checkpoint past the failed write');
});

t.test('an empty snapshot and an unchanged incremental are header + trailer; the receive writes nothing', async (t) => {
  const pool = new MemoryPool({ extentSizeBytes: EXTENT });
  await pool.openVolume('src', SIZE);
  await pool.createSnapshot('src', 'empty');
  await pool.createSnapshot('src', 'still-empty');
  const device = await pool.openSnapshot('src', 'empty');
  const full = await collect(send(pool, 'empty', null)(device));
  const unchanged = await collect(send(pool, 'still-empty', 'empty')(await pool.openSnapshot('src', 'still-empty')));
  const target = new MemoryBlockDevice({ sizeBytes: SIZE });
  for (const stream of [full, unchanged]) {
    const outcome = await receiveStream(inPieces(stream, 7), {}, { openTarget: async () => target, saveCheckpoint: async () => undefined, logger });
    t.equal(outcome.chunkCount, 0);
    t.equal(outcome.bytesWritten, 0);
  }
  t.equal(target.stats.writes + target.stats.writeZeroes, 0);
});
