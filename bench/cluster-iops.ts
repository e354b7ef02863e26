/**
 * IOPS rows of the cluster benchmark (issue 4 "Benchmark": 3 replicas on 3
 * local daemons vs 1 replica). Two volumes on the same 3-node cluster, both
 * created and served through n1 (the scheduler puts a 1-replica volume on
 * the creating node, daemon/control/volume-placement.ts), so the only
 * difference is the synchronous fan-out to two remote replicas. fio drives
 * n1's NBD port; rounds alternate which volume goes first; medians compare.
 */
import { forEachAlternating } from './bench-run.js';
import { median, medianResult } from './bench-table.js';
import { type CpuPerOp, cpuPerOp, formatCpuPerOp, processCpu } from './cluster-cpu.js';
import type { ClusterMember, ClusterTarget } from './cluster-target.js';
import { type FioJob, type FioResult, runFio } from './fio-run.js';

export interface IopsRow {
  readonly id: string;
  readonly rw: FioJob['rw'];
  readonly blockSizeBytes: number;
  readonly ioDepth: number;
}

export interface IopsOptions {
  readonly sizeBytes: number;
  readonly runtimeSec: number;
  readonly rounds: number;
  /** Which IOPS_ROWS to run, by id. */
  readonly rowIds: readonly string[];
  readonly progress: (message: string) => void;
}

/** CPU µs per request (from /proc, medians over the rounds): the owner n1, and the mean of the other nodes. */
export interface RowCpu {
  readonly owner: CpuPerOp | undefined;
  readonly replica: CpuPerOp | undefined;
}

/** Per row, the medians over the rounds for each volume. */
export interface IopsRowResult {
  readonly row: string;
  readonly oneReplica: FioResult;
  readonly threeReplicas: FioResult;
  readonly oneReplicaCpu: RowCpu;
  readonly threeReplicasCpu: RowCpu;
}

const KIB = 1024;
const MIB = 1024 * KIB;
const OWNER = 'n1';

export const IOPS_ROWS: readonly IopsRow[] = [
  { id: '4k-randwrite-qd1', rw: 'randwrite', blockSizeBytes: 4 * KIB, ioDepth: 1 },
  { id: '4k-randwrite-qd32', rw: 'randwrite', blockSizeBytes: 4 * KIB, ioDepth: 32 },
  { id: '1m-write-qd8', rw: 'write', blockSizeBytes: MIB, ioDepth: 8 },
];

const VOLUMES = [
  { name: 'bench-1r', replicas: 1 },
  { name: 'bench-3r', replicas: 3 },
] as const;

export async function measureIops(cluster: ClusterTarget, options: IopsOptions): Promise<IopsRowResult[]> {
  const owner = cluster.member(OWNER);
  for (const volume of VOLUMES) {
    const created = await owner.createVolume(volume.name, options.sizeBytes, volume.replicas);
    options.progress(`iops: ${volume.name} on ${created.replicas.map((replica) => replica.nodeId).join(',')}; pre-filling ${options.sizeBytes / MIB} MiB`);
    // Overwrites, not first writes: Plinth allocates extents on first write.
    await runFio({ uri: owner.nbdUri(volume.name), rw: 'write', blockSizeBytes: MIB, ioDepth: 8, sizeBytes: options.sizeBytes });
  }
  const others = cluster.members.filter((member) => member.nodeId !== OWNER);
  const rows: IopsRowResult[] = [];
  for (const row of IOPS_ROWS.filter((candidate) => options.rowIds.includes(candidate.id))) {
    const results = new Map<string, FioResult[]>(VOLUMES.map((volume) => [volume.name, []]));
    const cpu = new Map<string, RowCpu[]>(VOLUMES.map((volume) => [volume.name, []]));
    await forEachAlternating(options.rounds, VOLUMES, async (volume, round) => {
      const before = await sampleCpu(owner, others);
      const result = await runFio({
        uri: owner.nbdUri(volume.name),
        rw: row.rw,
        blockSizeBytes: row.blockSizeBytes,
        ioDepth: row.ioDepth,
        sizeBytes: options.sizeBytes,
        runtimeSec: options.runtimeSec,
      });
      const after = await sampleCpu(owner, others);
      // fio's time-based run: requests done ~= IOPS x runtime (connect and ramp are a rounding error).
      const requests = result.iops * options.runtimeSec;
      const runCpu = rowCpu(before, after, requests);
      options.progress(
        `${row.id} round ${round + 1}/${options.rounds} ${volume.name}: ${result.iops.toFixed(0)} IOPS, ${result.mibPerSec.toFixed(1)} MiB/s, p99 ${result.p99Us.toFixed(0)} us; ` +
          `CPU us/req owner ${formatCpuPerOp(runCpu.owner)}, per other node ${formatCpuPerOp(runCpu.replica)}`,
      );
      results.get(volume.name)?.push(result);
      cpu.get(volume.name)?.push(runCpu);
    });
    rows.push({
      row: row.id,
      oneReplica: medianResult(results.get('bench-1r') ?? []),
      threeReplicas: medianResult(results.get('bench-3r') ?? []),
      oneReplicaCpu: medianCpu(cpu.get('bench-1r') ?? []),
      threeReplicasCpu: medianCpu(cpu.get('bench-3r') ?? []),
    });
  }
  return rows;
}

interface ClusterCpuSample {
  readonly owner: Awaited<ReturnType<typeof processCpu>>;
  readonly others: Awaited<ReturnType<typeof processCpu>>[];
}

async function sampleCpu(owner: ClusterMember, others: readonly ClusterMember[]): Promise<ClusterCpuSample> {
  const read = (member: ClusterMember): ReturnType<typeof processCpu> => (member.pid === undefined ? Promise.resolve(undefined) : processCpu(member.pid));
  return { owner: await read(owner), others: await Promise.all(others.map(read)) };
}

function rowCpu(before: ClusterCpuSample, after: ClusterCpuSample, requests: number): RowCpu {
  const perOther = before.others.map((sample, index) => cpuPerOp(sample, after.others[index], requests));
  const known = perOther.filter((entry): entry is CpuPerOp => entry !== undefined);
  return {
    owner: cpuPerOp(before.owner, after.owner, requests),
    replica:
      known.length === 0
        ? undefined
        : {
            userUs: known.reduce((sum, entry) => sum + entry.userUs, 0) / known.length,
            systemUs: known.reduce((sum, entry) => sum + entry.systemUs, 0) / known.length,
          },
  };
}

function medianOf(list: readonly (CpuPerOp | undefined)[]): CpuPerOp | undefined {
  const known = list.filter((entry): entry is CpuPerOp => entry !== undefined);
  if (known.length === 0) return undefined;
  return { userUs: median(known.map((entry) => entry.userUs)), systemUs: median(known.map((entry) => entry.systemUs)) };
}

function medianCpu(list: readonly RowCpu[]): RowCpu {
  return { owner: medianOf(list.map((entry) => entry.owner)), replica: medianOf(list.map((entry) => entry.replica)) };
}
