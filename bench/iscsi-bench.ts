/**
 * iSCSI benchmark: `qemu-img bench` (QEMU's libiscsi driver) against a
 * Plinth single-node volume and against tgt with a file LUN, side by side,
 * alternating the two targets every round so machine noise lands on both,
 * and comparing medians (issue 5 "Benchmark": target ratio >= 1.0).
 *
 *   node dist/bench/iscsi-bench.js [--runtime-sec 5] [--rounds 3] [--size 1GiB]
 *        [--rows 4k-randread-qd1,...] [--targets plinth,tgt] [--cpu-prof DIR]
 *        [--json] [--work-dir DIR]
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { parseSize } from '../common/sizes.js';
import { formatNumber, formatRatio, median, renderAligned } from './bench-table.js';
import { renderProfileDir } from './cpu-profile-summary.js';
import { type QemuBenchResult, runQemuBench } from './iscsi-qemu-bench.js';
import { type IscsiBenchTarget, startPlinthIscsiTarget, startTgtIscsiTarget } from './iscsi-targets.js';

interface BenchRow {
  readonly id: string;
  readonly write: boolean;
  readonly blockSizeBytes: number;
  readonly ioDepth: number;
  readonly random: boolean;
}

const KIB = 1024;
const MIB = 1024 * KIB;
/** A prime number of 4 KiB blocks between requests: the "random" rows' stride (iscsi-qemu-bench.ts says why). */
const RANDOM_STEP_BLOCKS = 7919;
/** The first, calibrating run of a row lasts about this long; the count for --runtime-sec follows from it. */
const PROBE_SEC = 0.5;
/** A run may take this many times its planned duration (a slow target, a busy machine) before it counts as hung. */
const RUN_TIMEOUT_FACTOR = 10;
const RUN_TIMEOUT_FLOOR_MS = 30_000;
const MAX_COUNT = 10_000_000;

export const ISCSI_BENCH_ROWS: readonly BenchRow[] = [
  { id: '4k-randread-qd1', write: false, blockSizeBytes: 4 * KIB, ioDepth: 1, random: true },
  { id: '4k-randwrite-qd1', write: true, blockSizeBytes: 4 * KIB, ioDepth: 1, random: true },
  { id: '4k-randread-qd32', write: false, blockSizeBytes: 4 * KIB, ioDepth: 32, random: true },
  { id: '4k-randwrite-qd32', write: true, blockSizeBytes: 4 * KIB, ioDepth: 32, random: true },
  { id: '1m-read-qd8', write: false, blockSizeBytes: MIB, ioDepth: 8, random: false },
  { id: '1m-write-qd8', write: true, blockSizeBytes: MIB, ioDepth: 8, random: false },
];

type TargetName = IscsiBenchTarget['name'];

interface BenchOptions {
  readonly runtimeSec: number;
  readonly rounds: number;
  readonly sizeBytes: number;
  readonly rows: readonly BenchRow[];
  readonly targets: readonly TargetName[];
  readonly cpuProfileDir: string | undefined;
  readonly json: boolean;
  readonly workDir: string | undefined;
}

interface Measured {
  readonly iops: number;
  readonly mibPerSec: number;
}

export interface IscsiRowResult {
  readonly row: string;
  readonly plinth: Measured;
  readonly tgt: Measured;
}

function positiveNumber(text: string, flag: string): number {
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${flag} must be a positive number, got "${text}"`);
  return value;
}

export function parseIscsiBenchArgs(argv: readonly string[]): BenchOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      'runtime-sec': { type: 'string', default: '5' },
      rounds: { type: 'string', default: '3' },
      size: { type: 'string', default: '1GiB' },
      rows: { type: 'string' },
      targets: { type: 'string', default: 'plinth,tgt' },
      'cpu-prof': { type: 'string' },
      json: { type: 'boolean', default: false },
      'work-dir': { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  const rowIds = values.rows?.split(',') ?? ISCSI_BENCH_ROWS.map((row) => row.id);
  const rows = rowIds.map((id) => {
    const row = ISCSI_BENCH_ROWS.find((candidate) => candidate.id === id);
    if (row === undefined) throw new Error(`unknown row "${id}"; rows: ${ISCSI_BENCH_ROWS.map((r) => r.id).join(', ')}`);
    return row;
  });
  const targets = values.targets.split(',').map((name): TargetName => {
    if (name !== 'plinth' && name !== 'tgt') throw new Error(`unknown target "${name}"; use plinth,tgt`);
    return name;
  });
  const sizeBytes = parseSize(values.size);
  if (sizeBytes % MIB !== 0) throw new Error('--size must be a whole number of MiB');
  return {
    runtimeSec: positiveNumber(values['runtime-sec'], 'runtime-sec'),
    rounds: Math.ceil(positiveNumber(values.rounds, 'rounds')),
    sizeBytes,
    rows,
    targets,
    cpuProfileDir: values['cpu-prof'] === undefined ? undefined : resolve(values['cpu-prof']),
    json: values.json,
    workDir: values['work-dir'],
  };
}

function progress(message: string): void {
  process.stderr.write(`iscsi-bench: ${message}\n`);
}

function timeoutFor(plannedSec: number): number {
  return Math.max(RUN_TIMEOUT_FLOOR_MS, plannedSec * 1000 * RUN_TIMEOUT_FACTOR);
}

function runRow(row: BenchRow, target: IscsiBenchTarget, count: number, plannedSec: number): Promise<QemuBenchResult> {
  const stepBytes = row.random ? RANDOM_STEP_BLOCKS * row.blockSizeBytes : row.blockSizeBytes;
  return runQemuBench({ url: target.url, write: row.write, blockSizeBytes: row.blockSizeBytes, ioDepth: row.ioDepth, count, stepBytes, timeoutMs: timeoutFor(plannedSec) });
}

/** Request count that makes `row` last about runtimeSec on `target`, from a short probe run. */
async function calibrate(row: BenchRow, target: IscsiBenchTarget, runtimeSec: number): Promise<number> {
  const probeCount = row.blockSizeBytes >= MIB ? 32 : 1000;
  const probe = await runRow(row, target, probeCount, PROBE_SEC * 20);
  return Math.min(MAX_COUNT, Math.max(probeCount, Math.round(probe.iops * runtimeSec)));
}

/** Write the whole LUN once so reads hit data, not holes (both targets allocate on first write). */
async function preFill(target: IscsiBenchTarget, sizeBytes: number): Promise<void> {
  progress(`pre-filling ${target.name} (${sizeBytes / MIB} MiB)`);
  const fill: BenchRow = { id: 'fill', write: true, blockSizeBytes: MIB, ioDepth: 8, random: false };
  await runRow(fill, target, sizeBytes / MIB, sizeBytes / (10 * MIB));
}

async function measureRow(row: BenchRow, targets: readonly IscsiBenchTarget[], options: BenchOptions): Promise<IscsiRowResult> {
  const counts = new Map<TargetName, number>();
  for (const target of targets) counts.set(target.name, await calibrate(row, target, options.runtimeSec));
  const results = new Map<TargetName, QemuBenchResult[]>(targets.map((target) => [target.name, []]));
  for (let round = 0; round < options.rounds; round += 1) {
    // Alternate which target goes first so drift (page cache, neighbours) does not always favour the same one.
    const ordered = round % 2 === 0 ? targets : [...targets].reverse();
    for (const target of ordered) {
      const result = await runRow(row, target, counts.get(target.name) ?? 1, options.runtimeSec);
      progress(`${row.id} round ${round + 1}/${options.rounds} ${target.name}: ${result.iops.toFixed(0)} IOPS, ${result.mibPerSec.toFixed(1)} MiB/s`);
      results.get(target.name)?.push(result);
    }
  }
  const medianOf = (name: TargetName): Measured => {
    const list = results.get(name) ?? [];
    return { iops: median(list.map((r) => r.iops)), mibPerSec: median(list.map((r) => r.mibPerSec)) };
  };
  return { row: row.id, plinth: medianOf('plinth'), tgt: medianOf('tgt') };
}

export function renderIscsiTable(rows: readonly IscsiRowResult[]): string {
  const header = ['row', 'plinth IOPS', 'MiB/s', 'tgt IOPS', 'MiB/s', 'plinth/tgt'];
  const body = rows.map((row) => [
    row.row,
    formatNumber(row.plinth.iops, 0),
    formatNumber(row.plinth.mibPerSec, 1),
    formatNumber(row.tgt.iops, 0),
    formatNumber(row.tgt.mibPerSec, 1),
    formatRatio(row.plinth.iops / row.tgt.iops),
  ]);
  return renderAligned(header, body);
}

async function startTargets(options: BenchOptions, workDir: string): Promise<IscsiBenchTarget[]> {
  const targets: IscsiBenchTarget[] = [];
  try {
    for (const name of options.targets) {
      if (name === 'tgt') {
        targets.push(await startTgtIscsiTarget(workDir, options.sizeBytes));
        continue;
      }
      if (options.cpuProfileDir !== undefined) await mkdir(options.cpuProfileDir, { recursive: true });
      targets.push(await startPlinthIscsiTarget(workDir, 'bench', options.sizeBytes, options.cpuProfileDir));
    }
    return targets;
  } catch (err: unknown) {
    await Promise.all(targets.map((target) => target.stop()));
    throw err;
  }
}

export async function runIscsiBench(options: BenchOptions): Promise<IscsiRowResult[]> {
  const workDir = options.workDir ?? (await mkdtemp(join(tmpdir(), 'plinth-iscsi-bench-')));
  await mkdir(workDir, { recursive: true });
  try {
    const targets = await startTargets(options, workDir);
    try {
      for (const target of targets) await preFill(target, options.sizeBytes);
      const rows: IscsiRowResult[] = [];
      for (const row of options.rows) rows.push(await measureRow(row, targets, options));
      return rows;
    } finally {
      await Promise.all(targets.map((target) => target.stop()));
    }
  } finally {
    if (options.workDir === undefined) await rm(workDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const options = parseIscsiBenchArgs(process.argv.slice(2));
  progress(`rows ${options.rows.map((r) => r.id).join(', ')}; ${options.rounds} rounds x ~${options.runtimeSec}s; size ${options.sizeBytes / MIB} MiB`);
  const rows = await runIscsiBench(options);
  process.stdout.write(`\nmedians of ${options.rounds} rounds, ~${options.runtimeSec}s each, qemu-img bench (libiscsi), one session\n`);
  process.stdout.write(`${renderIscsiTable(rows)}\n`);
  if (options.json) process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
  if (options.cpuProfileDir !== undefined && options.targets.includes('plinth')) process.stdout.write(`\n${await renderProfileDir(options.cpuProfileDir, 25)}\n`);
}

const invokedPath = process.argv[1];
if (invokedPath !== undefined && pathToFileURL(resolve(invokedPath)).href === import.meta.url) {
  main().catch((err: unknown) => {
    process.stderr.write(`iscsi-bench: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
