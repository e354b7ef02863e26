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
import { mkdir } from 'node:fs/promises';
import { type SideBySideOptions, parseSideBySideArgs, positiveNumber } from './bench-args.js';
import { forEachAlternating, runIfMain, startAll, withTargets } from './bench-run.js';
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

const TARGET_NAMES = ['plinth', 'tgt'] as const satisfies readonly IscsiBenchTarget['name'][];
type TargetName = (typeof TARGET_NAMES)[number];

type BenchOptions = SideBySideOptions<BenchRow, TargetName>;

interface Measured {
  readonly iops: number;
  readonly mibPerSec: number;
}

export interface IscsiRowResult {
  readonly row: string;
  readonly plinth: Measured;
  readonly tgt: Measured;
}

export function parseIscsiBenchArgs(argv: readonly string[]): BenchOptions {
  const options = parseSideBySideArgs(argv, {
    rows: ISCSI_BENCH_ROWS,
    targets: TARGET_NAMES,
    parseRuntimeSec: positiveNumber,
    parseRounds: (text, flag) => Math.ceil(positiveNumber(text, flag)),
  });
  if (options.sizeBytes % MIB !== 0) throw new Error('--size must be a whole number of MiB');
  return options;
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
  await forEachAlternating(options.rounds, targets, async (target, round) => {
    const result = await runRow(row, target, counts.get(target.name) ?? 1, options.runtimeSec);
    progress(`${row.id} round ${round + 1}/${options.rounds} ${target.name}: ${result.iops.toFixed(0)} IOPS, ${result.mibPerSec.toFixed(1)} MiB/s`);
    results.get(target.name)?.push(result);
  });
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

function startTargets(options: BenchOptions, workDir: string): Promise<IscsiBenchTarget[]> {
  return startAll(options.targets, async (name) => {
    if (name === 'tgt') return startTgtIscsiTarget(workDir, options.sizeBytes);
    if (options.cpuProfileDir !== undefined) await mkdir(options.cpuProfileDir, { recursive: true });
    return startPlinthIscsiTarget(workDir, 'bench', options.sizeBytes, options.cpuProfileDir);
  });
}

export function runIscsiBench(options: BenchOptions): Promise<IscsiRowResult[]> {
  return withTargets(options.workDir, 'plinth-iscsi-bench-', (workDir) => startTargets(options, workDir), async (targets) => {
    for (const target of targets) await preFill(target, options.sizeBytes);
    const rows: IscsiRowResult[] = [];
    for (const row of options.rows) rows.push(await measureRow(row, targets, options));
    return rows;
  });
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

runIfMain(import.meta.url, 'iscsi-bench', main);
