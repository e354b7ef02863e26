/**
 * Rebuild rows of the cluster benchmark (issue 4 "Benchmark": rebuild
 * throughput, full and delta). A 3-replica volume owned by n1, filled; the
 * replica on the last node is rebuilt while the owner's reconciler reports
 * progress in `volume inspect` (daemon/control/rebuild-progress.ts).
 *
 * Full: kill -9 the replica's node, write once (the owner commits it
 * faulted), detach and attach again: the new session meets the replica
 * already out, so it knows nothing of what it missed and copies everything
 * (blockdev/volume/replica-set.ts "arrives faulted … copy everything").
 * Then restart the node on its data dir and time the copy.
 * Delta: kill -9 it again, write `deltaBytes` scattered through the same
 * session, restart: only the missed regions (plus its activity log) are
 * copied (daemon/volume/volume-session.ts rebuild).
 * Peer: `nbdcopy` of the same bytes between two `nbdkit file` exports on
 * loopback — the raw copy speed of this disk and network path.
 */
import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { type ClusterMember, type ClusterTarget, pollUntil, type ReplicaBody } from './cluster-target.js';
import { runFio } from './fio-run.js';
import { startNbdkitTarget } from './nbdkit-target.js';

export interface RebuildOptions {
  readonly sizeBytes: number;
  readonly deltaBytes: number;
  readonly rounds: number;
  readonly workDir: string;
  readonly progress: (message: string) => void;
}

export interface RebuildMeasurement {
  /** First poll that saw the replica rebuilding (or the last that saw it faulted) to the first that saw it in-sync. */
  readonly copyMs: number;
  /** The restarted node ready (/readyz) to the replica in-sync: detection + copy + commit. */
  readonly readyToInSyncMs: number;
  /** Bytes the catch-up covered (copied or zeroed) and the bytes it had to cover. */
  readonly doneBytes: number;
  readonly totalBytes: number;
}

export interface RebuildResults {
  readonly full: readonly RebuildMeasurement[];
  readonly delta: readonly RebuildMeasurement[];
  /** nbdcopy wall time per round, for the same byte count as the full rebuild. */
  readonly peerCopyMs: readonly number[];
}

const MIB = 1024 * 1024;
const VOLUME = 'bench-rebuild';
const OWNER = 'n1';
/** A floor of 10 MiB/s plus restart and detection time bounds every wait. */
const SLOWEST_BYTES_PER_MS = (10 * MIB) / 1000;
const DETECTION_SLACK_MS = 120_000;
const NBDCOPY_GRACE_MS = 60_000;
const FLUSH_TIMEOUT_MS = 60_000;
/** Delta writes: 1 MiB each at random offsets (replica regions are 4 MiB, blockdev/replica/activity-log.ts). */
export const DELTA_BLOCK_BYTES = MIB;

/** One 4 KiB write through the owner: attaches the volume there and faults a replica that cannot take it. */
async function touch(owner: ClusterMember): Promise<void> {
  await runFio({ uri: owner.nbdUri(VOLUME), rw: 'write', blockSizeBytes: 4096, ioDepth: 1, sizeBytes: 4096 });
}

function replicaOf(replicas: readonly ReplicaBody[], nodeId: string): ReplicaBody | undefined {
  return replicas.find((replica) => replica.nodeId === nodeId);
}

async function waitReplicaState(owner: ClusterMember, nodeId: string, state: ReplicaBody['state'], timeoutMs: number): Promise<void> {
  await pollUntil(`${VOLUME} replica on ${nodeId} to be ${state}`, timeoutMs, 100, async () => {
    const view = await owner.volume(VOLUME);
    return replicaOf(view.replicas, nodeId)?.state === state ? true : undefined;
  });
}

/** Restart the victim and follow the owner's view until the replica is in-sync again. */
async function restartAndTime(owner: ClusterMember, victim: ClusterMember, sizeBytes: number): Promise<RebuildMeasurement> {
  await victim.start();
  const readyMs = performance.now();
  let lastOutMs = readyMs;
  let rebuildingSinceMs: number | undefined;
  const timeoutMs = sizeBytes / SLOWEST_BYTES_PER_MS + DETECTION_SLACK_MS;
  const finished = await pollUntil(`${victim.nodeId} rebuilt in sync`, timeoutMs, 50, async () => {
    const view = await owner.volume(VOLUME);
    const replica = replicaOf(view.replicas, victim.nodeId);
    const nowMs = performance.now();
    if (replica === undefined) throw new Error(`${VOLUME} has no replica on ${victim.nodeId} any more`);
    if (replica.state === 'faulted') lastOutMs = nowMs;
    if (replica.state === 'rebuilding') rebuildingSinceMs ??= nowMs;
    if (replica.state !== 'in-sync') return undefined;
    return { atMs: nowMs, rebuild: replica.rebuild };
  });
  const startedMs = rebuildingSinceMs ?? lastOutMs;
  return {
    copyMs: finished.atMs - startedMs,
    readyToInSyncMs: finished.atMs - readyMs,
    doneBytes: finished.rebuild?.copiedBytes ?? Number.NaN,
    totalBytes: finished.rebuild?.totalBytes ?? Number.NaN,
  };
}

async function fullRebuild(cluster: ClusterTarget, options: RebuildOptions): Promise<RebuildMeasurement> {
  const owner = cluster.member(OWNER);
  const victim = cluster.member('n3');
  await victim.kill();
  await touch(owner);
  await waitReplicaState(owner, victim.nodeId, 'faulted', 30_000);
  const detached = await owner.api('POST', `/v1/volumes/${VOLUME}/detach`, {});
  if (detached.status !== 200) throw new Error(`detach ${VOLUME}: HTTP ${detached.status} ${JSON.stringify(detached.body)}`);
  // A new session: it meets the replica already faulted and must copy everything.
  await touch(owner);
  return restartAndTime(owner, victim, options.sizeBytes);
}

/**
 * Flushes through the owner, so the replicas' activity logs retire the
 * regions the full copy wrote (idle across two completed flushes,
 * blockdev/replica/region-tracker.ts) as a file system's periodic flushes
 * would; otherwise the delta would also recopy everything still "active".
 */
async function flushThrough(owner: ClusterMember): Promise<void> {
  const script = 'import nbd, sys\nh = nbd.NBD()\nh.connect_uri(sys.argv[1])\nfor _ in range(3):\n    h.flush()\nh.shutdown()\n';
  // Debian's python3 has python3-libnbd (nbdsh may resolve to another python).
  const child = spawn('/usr/bin/python3', ['-c', script, owner.nbdUri(VOLUME)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-4096);
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), FLUSH_TIMEOUT_MS);
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (exitCode) => resolve(exitCode));
    });
    if (code !== 0) throw new Error(`python3-libnbd flush via ${owner.nodeId} exited ${code}: ${stderr.trim()}`);
  } finally {
    clearTimeout(timer);
  }
}

async function deltaRebuild(cluster: ClusterTarget, options: RebuildOptions): Promise<RebuildMeasurement> {
  const owner = cluster.member(OWNER);
  const victim = cluster.member('n3');
  await flushThrough(owner);
  await victim.kill();
  // 1 MiB writes at random offsets over the whole volume: scattered, deltaBytes in all.
  await runFio({ uri: owner.nbdUri(VOLUME), rw: 'randwrite', blockSizeBytes: DELTA_BLOCK_BYTES, ioDepth: 8, sizeBytes: options.sizeBytes, ioSizeBytes: options.deltaBytes });
  await waitReplicaState(owner, victim.nodeId, 'faulted', 30_000);
  return restartAndTime(owner, victim, options.deltaBytes);
}

async function runNbdcopy(source: string, target: string, timeoutMs: number): Promise<number> {
  const startedMs = performance.now();
  const child = spawn('nbdcopy', ['--flush', source, target], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-4096);
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (exitCode) => resolve(exitCode));
    });
    if (code !== 0) throw new Error(`nbdcopy ${source} ${target} exited ${code}: ${stderr.trim()}`);
  } finally {
    clearTimeout(timer);
  }
  return performance.now() - startedMs;
}

/** The peer: nbdcopy of the same bytes between two nbdkit file exports; returns a copier per round. */
async function startPeer(options: RebuildOptions): Promise<{ copy: () => Promise<number>; stop: () => Promise<void> }> {
  const sourceDir = join(options.workDir, 'peer-source');
  const targetDir = join(options.workDir, 'peer-target');
  await mkdir(sourceDir, { recursive: true });
  await mkdir(targetDir, { recursive: true });
  const source = await startNbdkitTarget(sourceDir, options.sizeBytes);
  try {
    const target = await startNbdkitTarget(targetDir, options.sizeBytes);
    options.progress(`peer: filling the nbdkit source (${options.sizeBytes / MIB} MiB)`);
    await runFio({ uri: source.uri, rw: 'write', blockSizeBytes: MIB, ioDepth: 8, sizeBytes: options.sizeBytes });
    const timeoutMs = options.sizeBytes / SLOWEST_BYTES_PER_MS + NBDCOPY_GRACE_MS;
    return {
      copy: () => runNbdcopy(source.uri, target.uri, timeoutMs),
      stop: async () => {
        await Promise.all([source.stop(), target.stop()]);
      },
    };
  } catch (err: unknown) {
    await source.stop();
    throw err;
  }
}

function describe(kind: string, measurement: RebuildMeasurement): string {
  const mibPerSec = measurement.doneBytes / MIB / (measurement.copyMs / 1000);
  return `${kind}: ${(measurement.doneBytes / MIB).toFixed(1)} MiB in ${measurement.copyMs.toFixed(0)} ms (${mibPerSec.toFixed(0)} MiB/s), ready→in-sync ${measurement.readyToInSyncMs.toFixed(0)} ms`;
}

export async function measureRebuilds(cluster: ClusterTarget, options: RebuildOptions): Promise<RebuildResults> {
  const owner = cluster.member(OWNER);
  const created = await owner.createVolume(VOLUME, options.sizeBytes, 3);
  options.progress(`rebuild: volume ${VOLUME} on ${created.replicas.map((replica) => replica.nodeId).join(',')}; filling ${options.sizeBytes / MIB} MiB`);
  await runFio({ uri: owner.nbdUri(VOLUME), rw: 'write', blockSizeBytes: MIB, ioDepth: 8, sizeBytes: options.sizeBytes });
  const peer = await startPeer(options);
  const results = { full: [] as RebuildMeasurement[], delta: [] as RebuildMeasurement[], peerCopyMs: [] as number[] };
  try {
    for (let round = 0; round < options.rounds; round += 1) {
      // Alternate which side goes first so drift does not always favour one.
      const peerFirst = round % 2 === 1;
      if (peerFirst) results.peerCopyMs.push(await peer.copy());
      const full = await fullRebuild(cluster, options);
      results.full.push(full);
      options.progress(`rebuild round ${round + 1}/${options.rounds} ${describe('full', full)}`);
      if (!peerFirst) results.peerCopyMs.push(await peer.copy());
      options.progress(`rebuild round ${round + 1}/${options.rounds} peer nbdcopy: ${(results.peerCopyMs.at(-1) ?? Number.NaN).toFixed(0)} ms`);
      const delta = await deltaRebuild(cluster, options);
      results.delta.push(delta);
      options.progress(`rebuild round ${round + 1}/${options.rounds} ${describe('delta', delta)}`);
    }
  } finally {
    await peer.stop();
  }
  return results;
}
