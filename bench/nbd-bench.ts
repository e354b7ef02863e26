/**
 * NBD benchmark: fio (ioengine=nbd) against Plinth and against `nbdkit file`
 * side by side, alternating the two targets every round so machine noise
 * lands on both, and comparing medians. See bench/README.md.
 *
 *   node dist/bench/nbd-bench.js [--runtime-sec 5] [--rounds 3] [--size 1GiB]
 *        [--rows 4k-randread-qd1,...] [--targets plinth,nbdkit]
 *        [--cpu-prof DIR] [--json] [--work-dir DIR]
 */
import { mkdir } from 'node:fs/promises';
import { type SideBySideOptions, parseSideBySideArgs, positiveInteger } from './bench-args.js';
import { forEachAlternating, runIfMain, startAll, withTargets } from './bench-run.js';
import { type RowResult, medianResult, renderTable } from './bench-table.js';
import { renderProfileDir } from './cpu-profile-summary.js';
import { type FioJob, type FioResult, runFio } from './fio-run.js';
import { type BenchTarget, startNbdkitTarget } from './nbdkit-target.js';
import { startPlinthTarget } from './plinth-target.js';

interface BenchRow {
  readonly id: string;
  readonly rw: FioJob['rw'];
  readonly blockSizeBytes: number;
  readonly ioDepth: number;
}

const KIB = 1024;
const MIB = 1024 * KIB;

export const BENCH_ROWS: readonly BenchRow[] = [
  { id: '4k-randread-qd1', rw: 'randread', blockSizeBytes: 4 * KIB, ioDepth: 1 },
  { id: '4k-randwrite-qd1', rw: 'randwrite', blockSizeBytes: 4 * KIB, ioDepth: 1 },
  { id: '4k-randread-qd32', rw: 'randread', blockSizeBytes: 4 * KIB, ioDepth: 32 },
  { id: '4k-randwrite-qd32', rw: 'randwrite', blockSizeBytes: 4 * KIB, ioDepth: 32 },
  { id: '1m-read-qd8', rw: 'read', blockSizeBytes: MIB, ioDepth: 8 },
  { id: '1m-write-qd8', rw: 'write', blockSizeBytes: MIB, ioDepth: 8 },
];

const TARGET_NAMES = ['plinth', 'nbdkit'] as const;
type TargetName = (typeof TARGET_NAMES)[number];

type BenchOptions = SideBySideOptions<BenchRow, TargetName>;

export function parseBenchArgs(argv: readonly string[]): BenchOptions {
  return parseSideBySideArgs(argv, { rows: BENCH_ROWS, targets: TARGET_NAMES, parseRuntimeSec: positiveInteger, parseRounds: positiveInteger });
}

function progress(message: string): void {
  process.stderr.write(`nbd-bench: ${message}\n`);
}

/** Write the whole export once so reads hit data, not holes. */
async function preFill(target: BenchTarget, sizeBytes: number): Promise<void> {
  progress(`pre-filling ${target.name} (${sizeBytes / MIB} MiB)`);
  await runFio({ uri: target.uri, rw: 'write', blockSizeBytes: MIB, ioDepth: 8, sizeBytes });
}

async function measureRow(row: BenchRow, targets: readonly BenchTarget[], options: BenchOptions): Promise<RowResult> {
  const results = new Map<string, FioResult[]>(targets.map((target) => [target.name, []]));
  await forEachAlternating(options.rounds, targets, async (target, round) => {
    const job: FioJob = { uri: target.uri, rw: row.rw, blockSizeBytes: row.blockSizeBytes, ioDepth: row.ioDepth, sizeBytes: options.sizeBytes, runtimeSec: options.runtimeSec };
    const result = await runFio(job);
    progress(`${row.id} round ${round + 1}/${options.rounds} ${target.name}: ${result.iops.toFixed(0)} IOPS, p99 ${result.p99Us.toFixed(0)} us`);
    results.get(target.name)?.push(result);
  });
  const none: FioResult = { iops: Number.NaN, mibPerSec: Number.NaN, p99Us: Number.NaN };
  const medianOf = (name: TargetName): FioResult => {
    const list = results.get(name);
    return list === undefined ? none : medianResult(list);
  };
  return { row: row.id, plinth: medianOf('plinth'), nbdkit: medianOf('nbdkit') };
}

function startTargets(options: BenchOptions, workDir: string): Promise<BenchTarget[]> {
  return startAll(options.targets, async (name) => {
    if (name === 'nbdkit') return startNbdkitTarget(workDir, options.sizeBytes);
    if (options.cpuProfileDir !== undefined) await mkdir(options.cpuProfileDir, { recursive: true });
    const plinthOptions = { workDir, volumeName: 'bench', volumeSizeBytes: options.sizeBytes };
    return startPlinthTarget(options.cpuProfileDir === undefined ? plinthOptions : { ...plinthOptions, cpuProfileDir: options.cpuProfileDir });
  });
}

export function runBench(options: BenchOptions): Promise<RowResult[]> {
  return withTargets(options.workDir, 'plinth-nbd-bench-', (workDir) => startTargets(options, workDir), async (targets) => {
    for (const target of targets) await preFill(target, options.sizeBytes);
    const rows: RowResult[] = [];
    for (const row of options.rows) rows.push(await measureRow(row, targets, options));
    return rows;
  });
}

async function main(): Promise<void> {
  const options = parseBenchArgs(process.argv.slice(2));
  progress(`rows ${options.rows.map((r) => r.id).join(', ')}; ${options.rounds} rounds x ${options.runtimeSec}s; size ${options.sizeBytes / MIB} MiB`);
  const rows = await runBench(options);
  process.stdout.write(`\nmedians of ${options.rounds} rounds, ${options.runtimeSec}s each, fio ioengine=nbd, one connection\n`);
  process.stdout.write(`${renderTable(rows)}\n`);
  if (options.json) process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
  if (options.cpuProfileDir !== undefined && options.targets.includes('plinth')) process.stdout.write(`\n${await renderProfileDir(options.cpuProfileDir, 25)}\n`);
}

runIfMain(import.meta.url, 'nbd-bench', main);
