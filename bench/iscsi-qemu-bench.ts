/**
 * One load run against an iSCSI URL with `qemu-img bench` (qemu-utils with
 * qemu-block-extra: QEMU's libiscsi block driver, one session, requests
 * queued `depth` deep). Neither fio (no libiscsi engine in Debian's build)
 * nor iscsi-perf (reads only) covers writes through a userspace initiator.
 *
 * qemu-img bench has no random mode: it moves `stepBytes` after each request
 * and wraps at the end of the device. A step of a prime number of 4 KiB
 * blocks (coprime to a power-of-two device size) visits every block once
 * before repeating, far apart from the last one: no sequential locality for
 * readahead or request merging, which is what a random row is meant to defeat.
 */
import { spawn } from 'node:child_process';

export interface QemuBenchJob {
  readonly url: string;
  readonly write: boolean;
  readonly blockSizeBytes: number;
  readonly ioDepth: number;
  readonly count: number;
  /** Distance between consecutive requests; blockSizeBytes for sequential. */
  readonly stepBytes: number;
  readonly timeoutMs: number;
}

export interface QemuBenchResult {
  readonly count: number;
  readonly seconds: number;
  readonly iops: number;
  readonly mibPerSec: number;
}

/** The byte written by write rows: non-zero, so no target can treat the data as zeroes. */
const WRITE_PATTERN = 0xa5;
const MAX_OUTPUT_CHARS = 16_384;

export function qemuBenchArgs(job: QemuBenchJob): string[] {
  const args = ['bench', '-f', 'raw', '-c', String(job.count), '-d', String(job.ioDepth), '-s', String(job.blockSizeBytes), '-S', String(job.stepBytes)];
  if (job.write) args.push('-w', `--pattern=${WRITE_PATTERN}`);
  args.push(job.url);
  return args;
}

/** "Run completed in 2.515 seconds." (qemu-img.c img_bench) → seconds. */
export function parseQemuBenchSeconds(stdout: string): number {
  const match = /Run completed in ([\d.]+) seconds\./.exec(stdout);
  const seconds = match?.[1] === undefined ? Number.NaN : Number(match[1]);
  if (!Number.isFinite(seconds) || seconds <= 0) throw new Error(`qemu-img bench printed no run time: ${stdout.slice(-500)}`);
  return seconds;
}

export async function runQemuBench(job: QemuBenchJob): Promise<QemuBenchResult> {
  const args = qemuBenchArgs(job);
  const child = spawn('qemu-img', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const collect = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-MAX_OUTPUT_CHARS);
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const timer = setTimeout(() => child.kill('SIGKILL'), job.timeoutMs);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (exitCode, exitSignal) => resolve([exitCode, exitSignal]));
  }).finally(() => clearTimeout(timer));
  if (code !== 0) throw new Error(`qemu-img ${args.join(' ')} exited ${code ?? signal} (timeout ${job.timeoutMs} ms): ${output.trim()}`);
  const seconds = parseQemuBenchSeconds(output);
  const iops = job.count / seconds;
  return { count: job.count, seconds, iops, mibPerSec: (iops * job.blockSizeBytes) / (1024 * 1024) };
}
