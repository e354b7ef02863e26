/**
 * CPU time of the cluster's daemons from /proc/PID/stat (utime + stime,
 * fields 14 and 15, in clock ticks of 10 ms on Linux x86-64), so the IOPS
 * rows can say how many CPU µs one write costs the owner and each replica.
 * On 2 shared cores the 3-replica row is CPU-bound: µs per write is the
 * number that has to fall for IOPS to rise.
 */
import { readFile } from 'node:fs/promises';

/** USER_HZ: the unit of utime/stime; 100 on every Linux x86-64/arm64 build. */
const CLOCK_TICKS_PER_SEC = 100;

export interface CpuSample {
  readonly userUs: number;
  readonly systemUs: number;
}

/** utime and stime of one process in µs; undefined when it is gone. */
export async function processCpu(pid: number): Promise<CpuSample | undefined> {
  let text: string;
  try {
    text = await readFile(`/proc/${pid}/stat`, 'utf8');
  } catch {
    // The process exited between runs: no sample, the row says "-".
    return undefined;
  }
  // The command name (field 2) is in parentheses and may hold spaces: split after its ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // After the name, field 3 is index 0: utime (14) is index 11, stime (15) index 12.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return undefined;
  const usPerTick = 1_000_000 / CLOCK_TICKS_PER_SEC;
  return { userUs: utime * usPerTick, systemUs: stime * usPerTick };
}

/** CPU µs per operation between two samples of the same process. */
export interface CpuPerOp {
  readonly userUs: number;
  readonly systemUs: number;
}

export function cpuPerOp(before: CpuSample | undefined, after: CpuSample | undefined, operations: number): CpuPerOp | undefined {
  if (before === undefined || after === undefined || operations <= 0) return undefined;
  return { userUs: (after.userUs - before.userUs) / operations, systemUs: (after.systemUs - before.systemUs) / operations };
}

export function formatCpuPerOp(cpu: CpuPerOp | undefined): string {
  if (cpu === undefined || !Number.isFinite(cpu.userUs)) return '-';
  return `${(cpu.userUs + cpu.systemUs).toFixed(0)} (${cpu.userUs.toFixed(0)}u+${cpu.systemUs.toFixed(0)}s)`;
}
