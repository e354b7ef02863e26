/**
 * Cluster benchmark (issue 4 "Benchmark"): three plinthd on loopback with
 * default timeouts; prints
 *   - 4k randwrite qd1/qd32 and 1 MiB seq write: 3-replica vs 1-replica
 *     volume (target: 3r/1r IOPS >= 0.5 at qd32),
 *   - rebuild throughput, full and delta, next to nbdcopy of the same bytes
 *     (target: full >= 200 MiB/s),
 *   - failover, kill -9 of the owner to the first read served by a survivor
 *     (target: median < 10 s).
 * Rounds alternate the two sides and medians are compared (peers on this
 * box swing ±30% between runs). See bench/README.md.
 *
 *   node dist/bench/cluster-bench.js [--quick] [--rounds 3] [--seconds 5]
 *        [--size 1GiB] [--rebuild-size 4GiB] [--delta-size 64MiB]
 *        [--failovers 3] [--only iops,rebuild,failover] [--cpu-prof DIR]
 *        [--log-level warn] [--json] [--work-dir DIR]
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parseSize } from '../common/sizes.js';
import { cells, formatNumber, formatRatio, median, renderAligned } from './bench-table.js';
import { measureFailovers } from './cluster-failover.js';
import { IOPS_ROWS, type IopsRowResult, measureIops } from './cluster-iops.js';
import { measureRebuilds, type RebuildMeasurement, type RebuildResults } from './cluster-rebuild.js';
import { startClusterTarget } from './cluster-target.js';
import { formatCpuPerOp } from './cluster-cpu.js';
import { renderProfileDir } from './cpu-profile-summary.js';
import { positiveInteger } from './bench-args.js';
import { runIfMain } from './bench-run.js';

const MIB = 1024 * 1024;
const SECTIONS = ['iops', 'rebuild', 'failover'] as const;
type Section = (typeof SECTIONS)[number];

/** Issue 4 "Benchmark" targets. */
const TARGET_QD32_RATIO = 0.5;
const TARGET_FULL_REBUILD_MIB_PER_SEC = 200;
const TARGET_FAILOVER_MS = 10_000;

export interface ClusterBenchOptions {
  readonly rounds: number;
  readonly runtimeSec: number;
  readonly sizeBytes: number;
  readonly rebuildSizeBytes: number;
  readonly deltaSizeBytes: number;
  readonly failovers: number;
  readonly sections: readonly Section[];
  /** IOPS rows to run (ids of IOPS_ROWS); all by default. */
  readonly iopsRows: readonly string[];
  readonly cpuProfileDir: string | undefined;
  readonly logLevel: string;
  readonly json: boolean;
  readonly workDir: string | undefined;
}

interface ClusterBenchResults {
  iops?: IopsRowResult[];
  rebuild?: RebuildResults;
  failoverMs?: number[];
}

export function parseClusterBenchArgs(argv: readonly string[]): ClusterBenchOptions {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      quick: { type: 'boolean', default: false },
      rounds: { type: 'string' },
      seconds: { type: 'string' },
      size: { type: 'string' },
      'rebuild-size': { type: 'string' },
      'delta-size': { type: 'string' },
      failovers: { type: 'string' },
      only: { type: 'string' },
      rows: { type: 'string' },
      'cpu-prof': { type: 'string' },
      'log-level': { type: 'string', default: 'warn' },
      json: { type: 'boolean', default: false },
      'work-dir': { type: 'string' },
    },
    strict: true,
    allowPositionals: false,
  });
  // --quick: everything small, about a minute; explicit flags still win.
  const quick = values.quick;
  const sections = (values.only?.split(',') ?? [...SECTIONS]).map((name) => {
    const section = SECTIONS.find((candidate) => candidate === name);
    if (section === undefined) throw new Error(`unknown section "${name}"; use ${SECTIONS.join(',')}`);
    return section;
  });
  const iopsRows = values.rows?.split(',') ?? IOPS_ROWS.map((row) => row.id);
  for (const id of iopsRows) {
    if (!IOPS_ROWS.some((row) => row.id === id)) throw new Error(`unknown IOPS row "${id}"; use ${IOPS_ROWS.map((row) => row.id).join(',')}`);
  }
  return {
    iopsRows,
    rounds: positiveInteger(values.rounds ?? (quick ? '1' : '3'), 'rounds'),
    runtimeSec: positiveInteger(values.seconds ?? (quick ? '2' : '5'), 'seconds'),
    sizeBytes: parseSize(values.size ?? (quick ? '64MiB' : '1GiB')),
    rebuildSizeBytes: parseSize(values['rebuild-size'] ?? (quick ? '128MiB' : '4GiB')),
    deltaSizeBytes: parseSize(values['delta-size'] ?? (quick ? '16MiB' : '64MiB')),
    failovers: positiveInteger(values.failovers ?? (quick ? '1' : '3'), 'failovers'),
    sections,
    cpuProfileDir: values['cpu-prof'] === undefined ? undefined : resolve(values['cpu-prof']),
    logLevel: values['log-level'],
    json: values.json,
    workDir: values['work-dir'],
  };
}

function progress(message: string): void {
  process.stderr.write(`cluster-bench: ${message}\n`);
}

function verdict(met: boolean): string {
  return met ? 'MET' : 'MISSED';
}

function renderIops(rows: readonly IopsRowResult[], options: ClusterBenchOptions): string {
  const header = ['row', '1r IOPS', 'MiB/s', 'p99 us', '3r IOPS', 'MiB/s', 'p99 us', '3r/1r'];
  const body = rows.map((row) => [row.row, ...cells(row.oneReplica), ...cells(row.threeReplicas), formatRatio(row.threeReplicas.iops / row.oneReplica.iops)]);
  const qd32 = rows.find((row) => row.row === '4k-randwrite-qd32');
  const lines = [`IOPS: medians of ${options.rounds} rounds x ${options.runtimeSec}s, fio ioengine=nbd via n1, ${options.sizeBytes / MIB} MiB volumes`, renderAligned(header, body)];
  lines.push(
    'CPU us per request (user+system from /proc, medians): owner n1 / each other node',
    renderAligned(
      ['row', '1r owner', '1r other', '3r owner', '3r other'],
      rows.map((row) => [row.row, formatCpuPerOp(row.oneReplicaCpu.owner), formatCpuPerOp(row.oneReplicaCpu.replica), formatCpuPerOp(row.threeReplicasCpu.owner), formatCpuPerOp(row.threeReplicasCpu.replica)]),
    ),
  );
  if (qd32 !== undefined) {
    const ratio = qd32.threeReplicas.iops / qd32.oneReplica.iops;
    lines.push(`target 3r/1r 4k randwrite qd32 >= ${TARGET_QD32_RATIO}: ${ratio.toFixed(2)} ${verdict(ratio >= TARGET_QD32_RATIO)}`);
  }
  return lines.join('\n');
}

function rateMiBPerSec(bytes: number, ms: number): number {
  return bytes / MIB / (ms / 1000);
}

/** `changedBytes`: what the replica actually missed (the volume for full, the writes for delta). */
function rebuildLine(kind: string, list: readonly RebuildMeasurement[], changedBytes: number, peerMiBPerSec: number): string[] {
  const rate = median(list.map((entry) => rateMiBPerSec(entry.doneBytes, entry.copyMs)));
  const doneBytes = median(list.map((entry) => entry.doneBytes));
  return [
    kind,
    formatNumber(changedBytes / MIB, 1),
    formatNumber(doneBytes / MIB, 1),
    formatNumber(median(list.map((entry) => entry.copyMs)), 0),
    formatNumber(rate, 0),
    formatNumber(median(list.map((entry) => entry.readyToInSyncMs)), 0),
    formatNumber(peerMiBPerSec, 0),
    kind === 'full' ? formatRatio(rate / peerMiBPerSec) : '-',
  ];
}

function renderRebuild(results: RebuildResults, options: ClusterBenchOptions): string {
  const peerMiBPerSec = median(results.peerCopyMs.map((ms) => rateMiBPerSec(options.rebuildSizeBytes, ms)));
  // A "full" round only counts when the catch-up covered the whole volume: an owner that knows
  // what the replica missed (resync markers across sessions) rightly copies less.
  const full = results.full.filter((entry) => entry.totalBytes === options.rebuildSizeBytes);
  const notFull = results.full.length - full.length;
  const header = ['rebuild', 'MiB missed', 'MiB copied', 'copy ms', 'MiB/s', 'ready->in-sync ms', 'nbdcopy MiB/s', 'plinth/nbdcopy'];
  const body = [
    rebuildLine('full', full, options.rebuildSizeBytes, peerMiBPerSec),
    rebuildLine('delta', results.delta, options.deltaSizeBytes, peerMiBPerSec),
  ];
  const fullRate = median(full.map((entry) => rateMiBPerSec(entry.doneBytes, entry.copyMs)));
  const lines = [
    `rebuild: medians of ${options.rounds} rounds, ${options.rebuildSizeBytes / MIB} MiB 3-replica volume, delta = ${options.deltaSizeBytes / MIB} MiB of scattered 1 MiB writes; peer = nbdcopy between two nbdkit file exports`,
    renderAligned(header, body),
  ];
  if (notFull > 0) {
    const partial = results.full.filter((entry) => entry.totalBytes !== options.rebuildSizeBytes).map((entry) => `${(entry.totalBytes / MIB).toFixed(0)} MiB`);
    lines.push(`note: ${notFull} "full" round(s) did not copy the whole volume (${partial.join(', ')}): left out of the full row`);
  }
  lines.push(
    full.length === 0
      ? `target full rebuild >= ${TARGET_FULL_REBUILD_MIB_PER_SEC} MiB/s: no full copy happened, not measured`
      : `target full rebuild >= ${TARGET_FULL_REBUILD_MIB_PER_SEC} MiB/s: ${fullRate.toFixed(0)} MiB/s ${verdict(fullRate >= TARGET_FULL_REBUILD_MIB_PER_SEC)}`,
  );
  return lines.join('\n');
}

function renderFailover(timesMs: readonly number[]): string {
  const medianMs = median(timesMs);
  return [
    `failover (kill -9 owner -> first 4 KiB read via a survivor, default timeouts): ${timesMs.map((ms) => `${ms.toFixed(0)} ms`).join(', ')}`,
    `target median < ${TARGET_FAILOVER_MS} ms: ${medianMs.toFixed(0)} ms ${verdict(medianMs < TARGET_FAILOVER_MS)}`,
  ].join('\n');
}

export async function runClusterBench(options: ClusterBenchOptions): Promise<ClusterBenchResults> {
  const workDir = options.workDir ?? (await mkdtemp(join(tmpdir(), 'plinth-cluster-bench-')));
  await mkdir(workDir, { recursive: true });
  const results: ClusterBenchResults = {};
  try {
    const cluster = await startClusterTarget({
      workDir,
      nodeCount: 3,
      logLevel: options.logLevel,
      ...(options.cpuProfileDir === undefined ? {} : { cpuProfileDir: options.cpuProfileDir }),
    });
    progress(`cluster up: ${cluster.members.map((member) => `${member.nodeId} api ${member.ports.api} nbd ${member.ports.nbd}`).join('; ')}`);
    try {
      if (options.sections.includes('iops')) {
        results.iops = await measureIops(cluster, { sizeBytes: options.sizeBytes, runtimeSec: options.runtimeSec, rounds: options.rounds, rowIds: options.iopsRows, progress });
      }
      if (options.sections.includes('rebuild')) {
        results.rebuild = await measureRebuilds(cluster, {
          sizeBytes: options.rebuildSizeBytes,
          deltaBytes: options.deltaSizeBytes,
          rounds: options.rounds,
          workDir,
          progress,
        });
      }
      if (options.sections.includes('failover')) {
        results.failoverMs = await measureFailovers(cluster, { repetitions: options.failovers, progress });
      }
    } finally {
      await cluster.stop();
    }
    return results;
  } finally {
    if (options.workDir === undefined) await rm(workDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const options = parseClusterBenchArgs(process.argv.slice(2));
  progress(`sections ${options.sections.join(',')}; ${options.rounds} rounds x ${options.runtimeSec}s; size ${options.sizeBytes / MIB} MiB; rebuild ${options.rebuildSizeBytes / MIB} MiB`);
  const results = await runClusterBench(options);
  const parts: string[] = [];
  if (results.iops !== undefined) parts.push(renderIops(results.iops, options));
  if (results.rebuild !== undefined) parts.push(renderRebuild(results.rebuild, options));
  if (results.failoverMs !== undefined) parts.push(renderFailover(results.failoverMs));
  process.stdout.write(`\n${parts.join('\n\n')}\n`);
  if (options.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  if (options.cpuProfileDir !== undefined) process.stdout.write(`\n${await renderProfileDir(options.cpuProfileDir, 25)}\n`);
}

runIfMain(import.meta.url, 'cluster-bench', main);
