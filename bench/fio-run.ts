/**
 * Run one fio job against an NBD URI (fio's `nbd` ioengine, which drives
 * libnbd) and pull out the three numbers the benchmark compares: IOPS,
 * bandwidth and the 99th percentile completion latency.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface FioJob {
  readonly uri: string;
  readonly rw: 'read' | 'write' | 'randread' | 'randwrite';
  readonly blockSizeBytes: number;
  readonly ioDepth: number;
  /** Bytes of the export the job covers (from offset 0). */
  readonly sizeBytes: number;
  /** Run for this long (time based); undefined = one pass over sizeBytes. */
  readonly runtimeSec?: number;
  /** Stop after this many bytes of I/O (fio --io_size), e.g. scattered writes over a bigger sizeBytes. */
  readonly ioSizeBytes?: number;
}

export interface FioResult {
  readonly iops: number;
  readonly mibPerSec: number;
  readonly p99Us: number;
}

/** fio's JSON output, only the fields we read (see fio(1) "JSON output"). */
interface FioDirectionStats {
  readonly iops: number;
  readonly bw_bytes: number;
  readonly clat_ns?: { readonly percentile?: Readonly<Record<string, number>> };
}
interface FioJobStats {
  readonly error: number;
  readonly read: FioDirectionStats;
  readonly write: FioDirectionStats;
}

/** fio exits within its runtime; this bounds a hung server or client. */
const FIO_GRACE_MS = 120_000;

export function fioArgs(job: FioJob, outputPath: string): string[] {
  const args = [
    '--name=bench',
    '--ioengine=nbd',
    `--uri=${job.uri}`,
    `--rw=${job.rw}`,
    `--bs=${job.blockSizeBytes}`,
    `--iodepth=${job.ioDepth}`,
    `--size=${job.sizeBytes}`,
    '--numjobs=1',
    '--randrepeat=0',
    '--norandommap',
    '--output-format=json',
    `--output=${outputPath}`,
  ];
  if (job.runtimeSec !== undefined) args.push(`--runtime=${job.runtimeSec}`, '--time_based');
  if (job.ioSizeBytes !== undefined) args.push(`--io_size=${job.ioSizeBytes}`);
  return args;
}

export async function runFio(job: FioJob): Promise<FioResult> {
  const dir = await mkdtemp(join(tmpdir(), 'plinth-fio-'));
  try {
    const outputPath = join(dir, 'fio.json');
    const timeoutMs = (job.runtimeSec ?? 0) * 1000 + FIO_GRACE_MS;
    await runProcess('fio', fioArgs(job, outputPath), timeoutMs);
    return parseFioOutput(await readFile(outputPath, 'utf8'), job.rw);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export function parseFioOutput(text: string, rw: FioJob['rw']): FioResult {
  const parsed = JSON.parse(text) as { jobs?: readonly FioJobStats[] };
  const stats = parsed.jobs?.[0];
  if (stats === undefined) throw new Error('fio output has no jobs');
  if (stats.error !== 0) throw new Error(`fio job failed with error ${stats.error}`);
  const direction = rw === 'read' || rw === 'randread' ? stats.read : stats.write;
  const p99Ns = direction.clat_ns?.percentile?.['99.000000'] ?? Number.NaN;
  return {
    iops: direction.iops,
    mibPerSec: direction.bw_bytes / (1024 * 1024),
    p99Us: p99Ns / 1000,
  };
}

async function runProcess(command: string, args: readonly string[], timeoutMs: number): Promise<void> {
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    if (stderr.length < 16_384) stderr += chunk;
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  try {
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (exitCode, exitSignal) => resolve([exitCode, exitSignal]));
    });
    if (code !== 0) {
      throw new Error(`${command} ${args.join(' ')} exited ${code ?? signal}: ${stderr.trim()}`);
    }
  } finally {
    clearTimeout(timer);
  }
}
