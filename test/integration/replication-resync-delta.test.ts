/**
 * Issue 4, "show it": a replica's node down, then back (ARCHITECTURE
 * invariants 2 and 4). Three real plinthd processes on 127.0.0.1; a
 * 3-replica volume owned by n1 (NBD through n1). kill -9 n3 (not the owner):
 * the next write commits n3 faulted and is acknowledged, the volume is
 * degraded and writes go on. Restart n3 on its data dir: the owner's
 * reconciler catches it up by delta (only what it missed plus the regions of
 * its own activity log), far less than the volume, and commits it back: the
 * volume is healthy. Then kill -9 the owner and take the volume over on n3:
 * its replica, the source now (local first), holds every write, including
 * the ones it only got through the resync.
 */
import t, { type Test } from 'tap';
import { startDaemon, type DaemonProcess } from '../helpers/daemon-harness.js';
import { CLIENT_PY, ENV, eventually, runClient as runClientLines, startMember, writeClient } from './fixtures/replication-cluster.js';
const MiB = 1024 * 1024;
const VOLUME_BYTES = 256 * MiB;
const BLOCK = 4096;


/** Run the client; resolves with its last JSON line. */
async function runClient(script: string, args: readonly string[], timeoutMs: number): Promise<Record<string, unknown>> {
  return (await runClientLines(script, args, timeoutMs)).at(-1) ?? {};
}

/** `count` block offsets spread 64 KiB apart from `startBytes`, as the client's comma list. */
function offsets(startBytes: number, count: number): string {
  return Array.from({ length: count }, (_, index) => startBytes + index * 16 * BLOCK).join(',');
}

async function volumeView(t: Test, via: DaemonProcess): Promise<Record<string, unknown>> {
  const view = await via.api('GET', '/v1/volumes/resync');
  t.equal(view.status, 200, `inspect: ${JSON.stringify(view.body)}`);
  return view.body as Record<string, unknown>;
}

interface RebuildRecord {
  readonly copiedBytes: number;
  readonly totalBytes: number;
}

function rebuildOf(owner: DaemonProcess, replica: string): RebuildRecord | undefined {
  const record = owner.logRecords().find((entry) => entry.msg === 'replica rebuilt and back in sync' && entry.replica === replica);
  if (record === undefined || typeof record.copiedBytes !== 'number' || typeof record.totalBytes !== 'number') return undefined;
  return { copiedBytes: record.copiedBytes, totalBytes: record.totalBytes };
}

t.test('a replica node down then back: degraded, writes go on, delta resync, healthy, nothing lost', async (t) => {
  const script = await writeClient(t, CLIENT_PY);
  // The owner logs at info: its reconciler reports each rebuild's copied bytes there.
  const n1 = await startMember(t, 'n1', undefined, 'info');
  const n2 = await startMember(t, 'n2', n1);
  const n3 = await startMember(t, 'n3', n2);
  const created = await n1.api('POST', '/v1/volumes', { name: 'resync', size: '256MiB', replicas: 3 });
  t.equal(created.status, 201, `create: ${JSON.stringify(created.body)}`);

  const before = offsets(0, 16);
  t.same(await runClient(script, ['fill', n1.nbdUri('resync'), '1', before], 30_000), { filled: true }, 'written on all three');
  t.match(await volumeView(t, n1), { attachedTo: 'n1', state: 'healthy' });

  await n3.kill();
  // Invariant 2: n3 misses these writes; the first commits it faulted before it is acknowledged.
  const during = offsets(8 * MiB, 16);
  t.same(await runClient(script, ['fill', n1.nbdUri('resync'), '2', during], 30_000), { filled: true }, 'writes go on without n3');
  const degraded = await volumeView(t, n1);
  t.match(degraded, { attachedTo: 'n1', state: 'degraded' }, 'degraded while n3 is out');
  t.match(degraded.replicas, [{ nodeId: 'n1', state: 'in-sync' }, { nodeId: 'n2', state: 'in-sync' }, { nodeId: 'n3', state: 'faulted' }], 'n3 left the in-sync set (committed)');

  const n3Again = await startDaemon(t, { dataDir: n3.dataDir, ports: n3.ports, args: ['--node-id', 'n3'], env: ENV, logLevel: 'warn' });
  const rebuilt = await eventually('n3 to be caught up and back in sync', 45_000, async () => {
    const view = await n1.api('GET', '/v1/volumes/resync');
    return (view.body as { state?: string }).state === 'healthy' ? rebuildOf(n1, 'n3') : undefined;
  });
  t.ok(rebuilt.copiedBytes > 0, `the resync copied ${rebuilt.copiedBytes} bytes`);
  // Delta: the missed 64 KiB plus at most a few of n3's own unflushed activity regions (4 MiB each), never the volume.
  t.ok(rebuilt.totalBytes <= 12 * MiB, `the resync covered ${rebuilt.totalBytes} of ${VOLUME_BYTES} bytes (only the dirty regions)`);
  t.comment(`delta resync of n3: ${rebuilt.copiedBytes} bytes copied, ${rebuilt.totalBytes} covered, volume ${VOLUME_BYTES}`);

  // n3's replica must hold everything: take the volume over on n3, which reads its local replica first.
  await n1.kill();
  const checked = await eventually('n3 to serve the volume', 40_000, async () => runClient(script, ['check', n3Again.nbdUri('resync'), '2', during], 20_000));
  t.same(checked, { wrong: [] }, 'n3 holds the writes it missed while down');
  t.same(await runClient(script, ['check', n3Again.nbdUri('resync'), '1', before], 20_000), { wrong: [] }, 'and the ones from before');
  t.match(await volumeView(t, n2), { attachedTo: 'n3' }, 'n3 owns the volume now');
});
