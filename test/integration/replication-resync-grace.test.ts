/**
 * Issue 4 "Rebuild": a replica lost for longer than its volume's grace period
 * is replaced by a new one on another node, built by full copy, and only then
 * is the lost one removed (never below the replica count in sync).
 *
 * Three data planes in one process (real pools, replica servers on
 * 127.0.0.1, the real state machine behind an in-memory proposer), like
 * replication-failover-inprocess.test.ts: a 2-replica volume on n1 and n2
 * with a 300 ms grace, owned by n1; n2 crashes and is marked down; writes go
 * on; the owner's reconciler (given the replacement port, as the daemon's
 * wiring should) adds a replica on n3, rebuilds it in full, commits it
 * in-sync and removes n2. n3's store is then byte-identical to n1's.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import type { DiskPool } from '../../blockdev/pool/disk-pool.js';
import { openPool } from '../../blockdev/pool/open-pool.js';
import { VolumeExports } from '../../daemon/control/volume-exports.js';
import { RebuildReconciler } from '../../daemon/reconciler/rebuild-reconciler.js';
import { proposerReplacementPort } from '../../daemon/reconciler/replica-replacement.js';
import { findVolume } from '../../daemon/state/cluster-state.js';
import { MemoryProposer } from '../helpers/memory-proposer.js';
import { type DataPlane, startDataPlane } from '../../daemon/volume/data-plane.js';
import { proposerCluster } from '../../daemon/volume/proposer-cluster.js';

const logger = pino({ level: 'silent' });
const MiB = 1024 * 1024;
const VOLUME_BYTES = 16 * MiB;
const BLOCK_BYTES = 4096;
const SECRET = Buffer.from('in-process-cluster-secret-0123456789');
const NOW = '2026-11-26T00:00:00.000Z';

interface Node {
  readonly nodeId: string;
  db: Level<string, string>;
  pool: DiskPool;
  plane: DataPlane;
  exports: VolumeExports;
  stopped: boolean;
}

async function startNode(t: Test, nodeId: string, commands: MemoryProposer): Promise<Node> {
  const dir = await mkdtemp(join(tmpdir(), `plinth-grace-${nodeId}-`));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const db = new Level<string, string>(join(dir, 'db'));
  const pool = await openPool({ disks: [{ path: join(dir, 'disk0.img'), sizeBytes: 128 * MiB }], extentSizeBytes: 1 * MiB }, { db: db.sublevel<string, Buffer>('pool', { valueEncoding: 'buffer' }), logger });
  const cluster = proposerCluster({ commands, nowIso: () => NOW });
  const plane = await startDataPlane(
    { nodeId, secret: SECRET, reconciler: { intervalMs: 100 }, sessions: { session: { handshakeTimeoutMs: 1000, requestTimeoutMs: 2000 } } },
    { pool, db: db.sublevel<string, Buffer>('replica', { valueEncoding: 'buffer' }), cluster, logger },
  );
  const exports = new VolumeExports({ nodeId }, { commands, pool, logger, disconnectClients: () => undefined, sessions: plane.sessions });
  const node: Node = { nodeId, db, pool, plane, exports, stopped: false };
  // Registered after the temp dir's removal, so it runs before it (teardowns run last-in first-out).
  t.teardown(async () => {
    if (node.stopped) return;
    node.stopped = true;
    await exports.closeAll();
    await plane.close();
    await pool.close();
    await db.close();
  });
  return node;
}

/** What kill -9 leaves: nothing flushed, every socket cut. */
async function crash(node: Node): Promise<void> {
  node.stopped = true;
  node.plane.reconciler.close();
  await node.plane.sessions.closeAll();
  await node.plane.replicaServer.close();
  await node.pool.closeWithoutFlush();
  await node.db.close();
}

async function readStore(node: Node, offset: number, lengthBytes: number): Promise<Buffer> {
  const store = await node.pool.openVolume('vol-db', VOLUME_BYTES);
  const data = Buffer.alloc(lengthBytes);
  await store.read(offset, data);
  return data;
}

const client = (nodeId: string) => ({ protocol: 'nbd' as const, connectionId: `c-${nodeId}`, remoteAddress: '127.0.0.1' });

t.test('a replica lost past the grace period is replaced on another node by a full copy', async (t) => {
  const commands = new MemoryProposer();
  await commands.propose({ type: 'cluster.init', clusterId: 'c1' });
  const nodes: Node[] = [];
  for (const nodeId of ['n1', 'n2', 'n3']) {
    const node = await startNode(t, nodeId, commands);
    nodes.push(node);
    const peer = `127.0.0.1:${node.plane.replicaServer.address().port}`;
    await commands.propose({ type: 'node.join', nodeId, addresses: { api: '127.0.0.1:1', peer, nbd: '127.0.0.1:1', iscsi: '127.0.0.1:1' }, joinedAt: NOW });
  }
  const [n1, n2, n3] = nodes;
  if (n1 === undefined || n2 === undefined || n3 === undefined) throw new Error('nodes missing');
  await commands.propose({ type: 'volume.create', id: 'vol-db', name: 'db', sizeBytes: VOLUME_BYTES, replicaCount: 2, graceMs: 300, createdAt: NOW, placement: ['n1', 'n2'] });

  // The owner's reconciler with the replacement port (the daemon's own one is built without it).
  n1.plane.reconciler.close();
  const reconciler = new RebuildReconciler(
    { intervalMs: 100 },
    { sessions: () => n1.plane.sessions.list(), cluster: proposerCluster({ commands, nowIso: () => NOW }), replacement: proposerReplacementPort({ commands, nowIso: () => NOW }), logger },
  );
  reconciler.start();
  t.teardown(async () => {
    reconciler.close();
    await reconciler.settled();
  });

  const exported = await n1.exports.openExport('db', client('n1'));
  t.teardown(() => exported.release());
  const before = randomBytes(2 * MiB);
  await exported.device.write(0, before);
  await exported.device.flush();

  await crash(n2);
  await commands.propose({ type: 'node.down', nodeId: 'n2', at: NOW });
  const during = randomBytes(1 * MiB);
  await exported.device.write(8 * MiB, during);
  t.equal(findVolume(commands.state, 'db')?.replicas.find((replica) => replica.nodeId === 'n2')?.state, 'faulted', 'n2 was committed faulted before the write was acknowledged');

  // Writes go on while the replacement is built.
  const deadline = Date.now() + 20_000;
  let writes = 0;
  while (Date.now() < deadline) {
    const replicas = findVolume(commands.state, 'db')?.replicas ?? [];
    if (replicas.length === 2 && replicas.every((replica) => replica.state === 'in-sync' && replica.nodeId !== 'n2')) break;
    await exported.device.write(12 * MiB + (writes % 64) * BLOCK_BYTES, Buffer.alloc(BLOCK_BYTES, writes % 251));
    writes += 1;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  t.same(
    findVolume(commands.state, 'db')?.replicas.map((replica) => [replica.nodeId, replica.state]),
    [['n1', 'in-sync'], ['n3', 'in-sync']],
    'n3 replaced n2: rebuilt, committed in-sync, n2 removed',
  );
  t.same(n1.plane.sessions.list()[0]?.replicaStatuses().map((status) => status.nodeId), ['n1', 'n3'], 'the session serves n1 and n3');
  const view = reconciler.views('db').find((entry) => entry.nodeId === 'n3');
  t.equal(view?.progress?.totalBytes, VOLUME_BYTES, 'the replacement was built by a full copy');
  t.ok(writes > 0, `${writes} writes went on during the replacement`);

  await exported.device.flush();
  const differing: number[] = [];
  for (let offset = 0; offset < VOLUME_BYTES; offset += MiB) {
    if (!(await readStore(n1, offset, MiB)).equals(await readStore(n3, offset, MiB))) differing.push(offset);
  }
  t.same(differing, [], 'n3 is byte-identical to n1');
  t.ok((await readStore(n3, 8 * MiB, MiB)).equals(during), 'n3 holds the write made while n2 was gone');
  t.ok((await readStore(n3, 0, 2 * MiB)).equals(before), 'and the data from before');
});
