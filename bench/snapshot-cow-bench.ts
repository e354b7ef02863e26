/**
 * Copy-on-write cost of a fresh snapshot (issue 8 "Show it"): 4 KiB random
 * writes straight into a pool volume (no network), first on a fully
 * allocated volume with no snapshot, then right after a snapshot of it, when
 * the first write into each 1 MiB extent copies the extent. Same seeded
 * offsets, same queue depth. Prints a table (or --json).
 *
 *   node dist/bench/snapshot-cow-bench.js [--size 1GiB] [--runtime-sec 5] [--qd 16] [--json]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Level } from 'level';
import { pino } from 'pino';
import { SeededPrng } from '../common/prng.js';
import { formatSize, parseSize } from '../common/sizes.js';
import type { DiskPool } from '../blockdev/pool/disk-pool.js';
import { openPool } from '../blockdev/pool/open-pool.js';
import type { VolumeStore } from '../blockdev/pool/pool-types.js';
import { positiveInteger, positiveNumber } from './bench-args.js';

const BLOCK_BYTES = 4096;
const PREFILL_CHUNK_BYTES = 1024 * 1024;
/** The copies happen early (the first write into each extent): the first window shows their cost. */
const FIRST_WINDOW_SEC = 1;

interface RowResult {
  readonly row: string;
  readonly iops: number;
  readonly firstSecondIops: number;
  readonly writes: number;
  readonly extentsCopied: number;
  readonly seconds: number;
}

async function randomWrites(
  volume: VolumeStore,
  options: { runtimeSec: number; queueDepth: number; seed: number },
): Promise<{ writes: number; firstWindowWrites: number; seconds: number }> {
  const prng = new SeededPrng(options.seed);
  const blocks = Math.floor(volume.sizeBytes / BLOCK_BYTES);
  const data = Buffer.alloc(BLOCK_BYTES, 0x5a);
  const deadline = performance.now() + options.runtimeSec * 1000;
  const started = performance.now();
  const firstWindowEnd = started + FIRST_WINDOW_SEC * 1000;
  let writes = 0;
  let firstWindowWrites = 0;
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const offset = prng.nextInt(blocks) * BLOCK_BYTES;
      if (volume.writeInline?.(offset, data) !== true) {
        await volume.write(offset, data);
      }
      writes += 1;
      if (performance.now() <= firstWindowEnd) firstWindowWrites += 1;
    }
  };
  await Promise.all(Array.from({ length: options.queueDepth }, worker));
  return { writes, firstWindowWrites, seconds: (performance.now() - started) / 1000 };
}

async function prefill(volume: VolumeStore): Promise<void> {
  const chunk = Buffer.alloc(PREFILL_CHUNK_BYTES, 0xa5);
  for (let offset = 0; offset < volume.sizeBytes; offset += PREFILL_CHUNK_BYTES) {
    await volume.write(offset, chunk.subarray(0, Math.min(PREFILL_CHUNK_BYTES, volume.sizeBytes - offset)));
  }
  await volume.flush();
}

async function measure(pool: DiskPool, volume: VolumeStore, row: string, options: { runtimeSec: number; queueDepth: number }): Promise<RowResult> {
  const usedBefore = pool.stats().usedBytes;
  const { writes, firstWindowWrites, seconds } = await randomWrites(volume, { ...options, seed: 7 });
  await volume.flush();
  const extentsCopied = (pool.stats().usedBytes - usedBefore) / pool.extentSizeBytes;
  return { row, iops: Math.round(writes / seconds), firstSecondIops: Math.round(firstWindowWrites / Math.min(seconds, FIRST_WINDOW_SEC)), writes, extentsCopied, seconds: Number(seconds.toFixed(2)) };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      size: { type: 'string', default: '1GiB' },
      'runtime-sec': { type: 'string', default: '5' },
      qd: { type: 'string', default: '16' },
      json: { type: 'boolean', default: false },
    },
  });
  const sizeBytes = parseSize(values.size);
  const runtimeSec = positiveNumber(values['runtime-sec'], 'runtime-sec');
  const queueDepth = positiveInteger(values.qd, 'qd');
  const dir = await mkdtemp(join(tmpdir(), 'plinth-cow-bench-'));
  const root = new Level<string, string>(join(dir, 'meta'));
  try {
    const db = root.sublevel<string, Buffer>('pool', { valueEncoding: 'buffer' });
    const pool = await openPool({ disks: [{ path: join(dir, 'disk0'), sizeBytes: 3 * sizeBytes }] }, { db, logger: pino({ level: 'silent' }) });
    const volume = await pool.openVolume('bench', sizeBytes);
    await prefill(volume);
    const results = [await measure(pool, volume, 'no snapshot', { runtimeSec, queueDepth })];
    await pool.createSnapshot('bench', 'fresh');
    results.push(await measure(pool, volume, 'fresh snapshot', { runtimeSec, queueDepth }));
    await pool.close();
    const extents = sizeBytes / pool.extentSizeBytes;
    if (values.json) {
      process.stdout.write(`${JSON.stringify({ sizeBytes, queueDepth, runtimeSec, extents, results })}\n`);
    } else {
      process.stdout.write(`4k random writes, ${formatSize(sizeBytes)} volume (${extents} extents), qd ${queueDepth}, ${runtimeSec} s per row\n`);
      for (const result of results) {
        process.stdout.write(
          `${result.row.padEnd(16)} ${String(result.iops).padStart(8)} IOPS (first second ${String(result.firstSecondIops).padStart(8)})   ${String(result.extentsCopied).padStart(6)} extents copied\n`,
        );
      }
    }
  } finally {
    await root.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
