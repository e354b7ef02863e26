/**
 * NBD benchmark: fio (ioengine=nbd) against Plinth and against `nbdkit file`
 * side by side, alternating the two targets every round so machine noise
 * lands on both, and comparing medians. See bench/README.md.
 *
 *   node dist/bench/nbd-bench.js [--runtime-sec 5] [--rounds 3] [--size 1GiB]
 *        [--rows 4k-randread-qd1,...] [--targets plinth,nbdkit]
 *        [--cpu-prof DIR] [--json] [--work-dir DIR]
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { parseSize } from '../common/sizes.js';
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

type TargetName = 'plinth' | 'nbdkit';

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

function positiveInteger(text: string, flag: string): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value <= 0) throw new Error(`--${flag} must be a positive integer, got "${text}"`);
  return value;
}

export function parseBenchArgs(argv: readonly string[]): BenchOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      'runtime-sec': { type: 'string', default: '5' },
      rounds: { type: 'string', default: '3' },
      size: { type: 'string', default: '1GiB' },
      rows: { type: 'string' },
      targets: { type: 'string', default: 'plinth,nbdkit' },
      'cpu-prof': { type: 'string' },
      json: { type: 'boolean', default: false },
      'work-dir': { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  const rowIds = values.rows?.split(',') ?? BENCH_ROWS.map((row) => row.id);
  const rows = rowIds.map((id) => {
    const row = BENCH_ROWS.find((candidate) => candidate.id === id);
    if (row === undefined) throw new Error(`unknown row "${id}"; rows: ${BENCH_ROWS.map((r) => r.id).join(', ')}`);
    return row;
  });
  const targets = values.targets.split(',').map((name) => {
    if (name !== 'plinth' && name !== 'nbdkit') throw new Error(`unknown target "${name}"; use plinth,nbdkit`);
    return name;
  });
  return {
    runtimeSec: positiveInteger(values['runtime-sec'], 'runtime-sec'),
    rounds: positiveInteger(values.rounds, 'rounds'),
    sizeBytes: parseSize(values.size),
    rows,
    targets,
    cpuProfileDir: values['cpu-prof'] === undefined ? undefined : resolve(values['cpu-prof']),
    json: values.json,
    workDir: values['work-dir'],
  };
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
  for (let round = 0; round < options.rounds; round += 1) {
    // Alternate which target goes first so drift (page cache, thermal,
    // neighbours) does not always favour the same one.
    const ordered = round % 2 === 0 ? targets : [...targets].reverse();
    for (const target of ordered) {
      const job: FioJob = { uri: target.uri, rw: row.rw, blockSizeBytes: row.blockSizeBytes, ioDepth: row.ioDepth, sizeBytes: options.sizeBytes, runtimeSec: options.runtimeSec };
      const result = await runFio(job);
      progress(`${row.id} round ${round + 1}/${options.rounds} ${target.name}: ${result.iops.toFixed(0)} IOPS, p99 ${result.p99Us.toFixed(0)} us`);
      results.get(target.name)?.push(result);
    }
  }
  const none: FioResult = { iops: Number.NaN, mibPerSec: Number.NaN, p99Us: Number.NaN };
  const medianOf = (name: TargetName): FioResult => {
    const list = results.get(name);
    return list === undefined ? none : medianResult(list);
  };
  return { row: row.id, plinth: medianOf('plinth'), nbdkit: medianOf('nbdkit') };
}

async function startTargets(options: BenchOptions, workDir: string): Promise<BenchTarget[]> {
  const targets: BenchTarget[] = [];
  try {
    for (const name of options.targets) {
      if (name === 'plinth') {
        if (options.cpuProfileDir !== undefined) await mkdir(options.cpuProfileDir, { recursive: true });
        const plinthOptions = { workDir, volumeName: 'bench', volumeSizeBytes: options.sizeBytes };
        targets.push(
          await startPlinthTarget(options.cpuProfileDir === undefined ? plinthOptions : { ...plinthOptions, cpuProfileDir: options.cpuProfileDir }),
        );
      } else {
        targets.push(await startNbdkitTarget(workDir, options.sizeBytes));
      }
    }
    return targets;
  } catch (err: unknown) {
    await Promise.all(targets.map((target) => target.stop()));
    throw err;
  }
}

export async function runBench(options: BenchOptions): Promise<RowResult[]> {
  const workDir = options.workDir ?? (await mkdtemp(join(tmpdir(), 'plinth-nbd-bench-')));
  await mkdir(workDir, { recursive: true });
  const targets = await startTargets(options, workDir);
  try {
    for (const target of targets) await preFill(target, options.sizeBytes);
    const rows: RowResult[] = [];
    for (const row of options.rows) rows.push(await measureRow(row, targets, options));
    return rows;
  } finally {
    await Promise.all(targets.map((target) => target.stop()));
    if (options.workDir === undefined) await rm(workDir, { recursive: true, force: true });
  }
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

const invokedPath = process.argv[1];
if (invokedPath !== undefined && pathToFileURL(resolve(invokedPath)).href === import.meta.url) {
  main().catch((err: unknown) => {
    process.stderr.write(`nbd-bench: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
