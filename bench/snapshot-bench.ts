/**
 * Snapshot benchmark (issue 8 "Show it"): two 3-node clusters on loopback.
 *   - send throughput: GET …/snapshots/{s}/send of a full snapshot, read to
 *     /dev/null by this process (MiB/s of volume data and of stream bytes);
 *   - full cluster-to-cluster copy: the same stream piped straight into
 *     POST …/receive on the other cluster (replicated writes, verification,
 *     snapshot, visible) — end-to-end MiB/s;
 *   - copy-on-write cost over NBD: fio 4k random writes (ioengine=nbd) on a
 *     filled volume without a snapshot, then right after a fresh snapshot,
 *     side by side with the ratio (bench/snapshot-cow-bench.ts measures the
 *     pool alone, without the network and replication).
 *
 *   node dist/bench/snapshot-bench.js [--size 1GiB] [--cow-size 256MiB] [--seconds 5] [--json] [--work-dir DIR]
 */
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { formatSize, parseSize } from '../common/sizes.js';
import { positiveInteger } from './bench-args.js';
import { runIfMain } from './bench-run.js';
import { formatNumber, formatRatio, renderAligned } from './bench-table.js';
import { startClusterTarget, type ClusterMember } from './cluster-target.js';
import { runFio } from './fio-run.js';

const MIB = 1024 * 1024;

interface SnapshotBenchResults {
  readonly sizeBytes: number;
  /** The fill: fio 1 MiB sequential writes over NBD into the 3-replica volume, the write path a receive uses too. */
  readonly fill: { readonly seconds: number; readonly mibPerSec: number };
  readonly send: { readonly seconds: number; readonly streamBytes: number; readonly volumeMibPerSec: number; readonly streamMibPerSec: number };
  readonly copy: { readonly seconds: number; readonly volumeMibPerSec: number; readonly status: number; readonly answer: string };
  readonly cow: { readonly withoutSnapshotIops: number; readonly withSnapshotIops: number; readonly ratio: number };
}

async function token(member: ClusterMember): Promise<string> {
  return (await readFile(join(member.dataDir, 'api-token'), 'utf8')).trim();
}

async function snapshot(member: ClusterMember, volume: string, name: string): Promise<void> {
  const created = await member.api('POST', `/v1/volumes/${volume}/snapshots`, { name });
  if (created.status !== 201) throw new Error(`snapshot ${volume}@${name}: HTTP ${created.status} ${JSON.stringify(created.body)}`);
}

async function fill(member: ClusterMember, volume: string, sizeBytes: number): Promise<void> {
  await runFio({ uri: member.nbdUri(volume), rw: 'write', blockSizeBytes: MIB, ioDepth: 8, sizeBytes });
}

async function openSend(member: ClusterMember, volume: string, snapshotName: string): Promise<Response> {
  const response = await fetch(`${member.apiUrl}/v1/volumes/${volume}/snapshots/${snapshotName}/send`, { headers: { authorization: `Bearer ${await token(member)}` } });
  if (!response.ok || response.body === null) throw new Error(`send ${volume}@${snapshotName}: HTTP ${response.status} ${await response.text()}`);
  return response;
}

async function measureSend(member: ClusterMember, sizeBytes: number): Promise<SnapshotBenchResults['send']> {
  const started = performance.now();
  const response = await openSend(member, 'bench', 's1');
  let streamBytes = 0;
  for await (const chunk of response.body ?? []) streamBytes += chunk.byteLength;
  const seconds = (performance.now() - started) / 1000;
  return { seconds, streamBytes, volumeMibPerSec: sizeBytes / MIB / seconds, streamMibPerSec: streamBytes / MIB / seconds };
}

async function measureCopy(from: ClusterMember, to: ClusterMember, sizeBytes: number): Promise<SnapshotBenchResults['copy']> {
  const started = performance.now();
  const source = await openSend(from, 'bench', 's1');
  const received = await fetch(`${to.apiUrl}/v1/volumes/bench-copy/receive`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await token(to)}`, 'content-type': 'application/octet-stream' },
    body: source.body,
    duplex: 'half',
  });
  const answer = await received.text();
  const seconds = (performance.now() - started) / 1000;
  return { seconds, volumeMibPerSec: sizeBytes / MIB / seconds, status: received.status, answer: answer.slice(0, 300) };
}

async function measureCow(member: ClusterMember, sizeBytes: number, seconds: number): Promise<SnapshotBenchResults['cow']> {
  await member.createVolume('cow', sizeBytes, 3);
  await fill(member, 'cow', sizeBytes);
  const job = { uri: member.nbdUri('cow'), rw: 'randwrite' as const, blockSizeBytes: 4096, ioDepth: 16, sizeBytes, runtimeSec: seconds };
  const without = await runFio(job);
  await snapshot(member, 'cow', 'fresh');
  const withSnapshot = await runFio(job);
  return { withoutSnapshotIops: without.iops, withSnapshotIops: withSnapshot.iops, ratio: withSnapshot.iops / without.iops };
}

export async function runSnapshotBench(options: { sizeBytes: number; cowSizeBytes: number; seconds: number; workDir: string }): Promise<SnapshotBenchResults> {
  await mkdir(options.workDir, { recursive: true });
  const a = await startClusterTarget({ workDir: join(options.workDir, 'a'), nodeCount: 3 });
  try {
    const b = await startClusterTarget({ workDir: join(options.workDir, 'b'), nodeCount: 3 });
    try {
      const a1 = a.member('n1');
      await a1.createVolume('bench', options.sizeBytes, 3);
      const fillStarted = performance.now();
      await fill(a1, 'bench', options.sizeBytes);
      const fillSeconds = (performance.now() - fillStarted) / 1000;
      await snapshot(a1, 'bench', 's1');
      const send = await measureSend(a1, options.sizeBytes);
      const copy = await measureCopy(a1, b.member('n1'), options.sizeBytes);
      const cow = await measureCow(a1, options.cowSizeBytes, options.seconds);
      return { sizeBytes: options.sizeBytes, fill: { seconds: fillSeconds, mibPerSec: options.sizeBytes / MIB / fillSeconds }, send, copy, cow };
    } finally {
      await b.stop();
    }
  } finally {
    await a.stop();
  }
}

function render(results: SnapshotBenchResults): string {
  const size = formatSize(results.sizeBytes);
  const copyNote = results.copy.status === 201 ? '' : ` (HTTP ${results.copy.status}: ${results.copy.answer})`;
  return [
    renderAligned(['row', 'seconds', 'MiB/s (volume)', 'MiB/s (stream)'], [
      [`send ${size} snapshot → /dev/null (API)`, formatNumber(results.send.seconds, 1), formatNumber(results.send.volumeMibPerSec, 0), formatNumber(results.send.streamMibPerSec, 0)],
      [`send | receive ${size}, cluster A → B${copyNote}`, formatNumber(results.copy.seconds, 1), formatNumber(results.copy.volumeMibPerSec, 0), '-'],
      [`reference: fio 1 MiB seq write ${size} over NBD, 3 replicas`, formatNumber(results.fill.seconds, 1), formatNumber(results.fill.mibPerSec, 0), '-'],
    ]),
    renderAligned(['4k randwrite qd16 over NBD (3 replicas)', 'IOPS'], [
      ['no snapshot', formatNumber(results.cow.withoutSnapshotIops, 0)],
      ['fresh snapshot (copy-on-write)', formatNumber(results.cow.withSnapshotIops, 0)],
      ['ratio with / without', formatRatio(results.cow.ratio)],
    ]),
  ].join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      size: { type: 'string', default: '1GiB' },
      'cow-size': { type: 'string', default: '256MiB' },
      seconds: { type: 'string', default: '5' },
      json: { type: 'boolean', default: false },
      'work-dir': { type: 'string' },
    },
  });
  const workDir = values['work-dir'] === undefined ? await mkdtemp(join(tmpdir(), 'plinth-snapshot-bench-')) : resolve(values['work-dir']);
  try {
    const results = await runSnapshotBench({ sizeBytes: parseSize(values.size), cowSizeBytes: parseSize(values['cow-size']), seconds: positiveInteger(values.seconds, '--seconds'), workDir });
    process.stdout.write(values.json ? `${JSON.stringify(results, null, 2)}\n` : `${render(results)}\n`);
  } finally {
    if (values['work-dir'] === undefined) await rm(workDir, { recursive: true, force: true });
  }
}

runIfMain(import.meta.url, 'snapshot-bench', main);
