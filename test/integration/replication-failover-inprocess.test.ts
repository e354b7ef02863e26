import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import type { DiskPool } from '../../blockdev/pool/disk-pool.js';
import { openPool } from '../../blockdev/pool/open-pool.js';
import { VolumeExports } from '../../daemon/control/volume-exports.js';
import { findVolume } from '../../daemon/state/cluster-state.js';
import { MemoryProposer } from '../helpers/memory-proposer.js';
import { type DataPlane, startDataPlane } from '../../daemon/volume/data-plane.js';
import { proposerCluster } from '../../daemon/volume/proposer-cluster.js';

/**
 * Three data planes in one process (real pools, replica servers on
 * 127.0.0.1, the real state machine behind an in-memory proposer): write a
 * checksummed record through node 1's export, crash node 1 (its replica
 * server and pool die without a flush), attach through node 2's export and
 * read every acknowledged block back; node 1 returns and is rebuilt in-sync.
 * The 3-daemon, kill -9 version needs the cluster join (part A).
 */

const logger = pino({ level: 'silent' });
const MiB = 1024 * 1024;
const VOLUME_BYTES = 64 * MiB;
const BLOCK_BYTES = 4096;
const SECRET = Buffer.from('in-process-cluster-secret-0123456789');
const NOW = '2026-11-26T00:00:00.000Z';

interface Node {
  readonly nodeId: string;
  readonly dir: string;
  db: Level<string, string>;
  pool: DiskPool;
  plane: DataPlane;
  exports: VolumeExports;
  stopped: boolean;
}

async function startNode(t: Test, nodeId: string, dir: string, commands: MemoryProposer, port = 0): Promise<Node> {
  const db = new Level<string, string>(join(dir, 'db'));
  const pool = await openPool({ disks: [{ path: join(dir, 'disk0.img'), sizeBytes: 256 * MiB }], extentSizeBytes: 1 * MiB }, { db: db.sublevel<string, Buffer>('pool', { valueEncoding: 'buffer' }), logger });
  const cluster = proposerCluster({ commands, nowIso: () => NOW });
  const plane = await startDataPlane(
    { nodeId, secret: SECRET, listenPort: port, reconciler: { intervalMs: 100 }, sessions: { session: { handshakeTimeoutMs: 1000, requestTimeoutMs: 2000 } } },
    { pool, db: db.sublevel<string, Buffer>('replica', { valueEncoding: 'buffer' }), cluster, logger },
  );
  const exports = new VolumeExports({ nodeId }, { commands, pool, logger, disconnectClients: () => undefined, sessions: plane.sessions });
  const node: Node = { nodeId, dir, db, pool, plane, exports, stopped: false };
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
  // Its links to the other replicas die with it (no flush is sent: close only cuts them).
  await node.plane.sessions.closeAll();
  await node.plane.replicaServer.close();
  await node.pool.closeWithoutFlush();
  await node.db.close();
}

const digest = (data: Buffer): string => createHash('sha256').update(data).digest('hex');
const client = (nodeId: string) => ({ protocol: 'nbd' as const, connectionId: `c-${nodeId}`, remoteAddress: '127.0.0.1' });

t.test('kill the owner: every acknowledged block reads back through a survivor, then the old node is rebuilt', async (t) => {
  const commands = new MemoryProposer();
  await commands.propose({ type: 'cluster.init', clusterId: 'c1' });
  const nodes: Node[] = [];
  for (const nodeId of ['n1', 'n2', 'n3']) {
    const dir = await mkdtemp(join(tmpdir(), `plinth-repl-${nodeId}-`));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const node = await startNode(t, nodeId, dir, commands);
    nodes.push(node);
    const peer = `127.0.0.1:${node.plane.replicaServer.address().port}`;
    await commands.propose({ type: 'node.join', nodeId, addresses: { api: '127.0.0.1:1', peer, nbd: '127.0.0.1:1', iscsi: '127.0.0.1:1' }, joinedAt: NOW });
  }
  const [n1, n2] = nodes;
  if (n1 === undefined || n2 === undefined) throw new Error('nodes missing');
  await commands.propose({ type: 'volume.create', id: 'vol-db', name: 'db', sizeBytes: VOLUME_BYTES, replicaCount: 3, createdAt: NOW, placement: ['n1', 'n2', 'n3'] });

  const first = await n1.exports.openExport('db', client('n1'));
  t.teardown(() => first.release());
  t.equal(findVolume(commands.state, 'db')?.attachedTo, 'n1', 'connecting attached the volume to n1');
  const acknowledged = new Map<number, string>();
  const deadline = Date.now() + 5000;
  for (let round = 0; round < 16 && Date.now() < deadline; round += 1) {
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        const block = Math.floor(Math.random() * (VOLUME_BYTES / BLOCK_BYTES));
        const data = randomBytes(BLOCK_BYTES);
        acknowledged.delete(block); // in flight: either version may survive until acked
        await first.device.write(block * BLOCK_BYTES, data);
        acknowledged.set(block, digest(data));
      }),
    );
  }
  t.ok(acknowledged.size > 100, `${acknowledged.size} acknowledged blocks recorded`);

  const n1Port = n1.plane.replicaServer.address().port;
  const killedAt = performance.now();
  await crash(n1);
  await commands.propose({ type: 'node.down', nodeId: 'n1', at: NOW });
  const second = await n2.exports.openExport('db', client('n2'));
  t.teardown(() => second.release());
  const firstRead = Buffer.alloc(BLOCK_BYTES);
  await second.device.read(0, firstRead);
  t.comment(`kill to first successful read: ${(performance.now() - killedAt).toFixed(0)} ms`);
  const volume = findVolume(commands.state, 'db');
  t.equal(volume?.generation, 2, 'the failover committed generation 2');
  t.same(volume?.replicas.find((replica) => replica.nodeId === 'n1')?.state, 'faulted', 'n1 left the in-sync set through a committed entry');
  let intact = 0;
  for (const [block, expected] of acknowledged) {
    const back = Buffer.alloc(BLOCK_BYTES);
    await second.device.read(block * BLOCK_BYTES, back);
    if (digest(back) === expected) intact += 1;
  }
  t.equal(intact, acknowledged.size, 'every acknowledged block reads back intact');
  await second.device.write(0, Buffer.alloc(BLOCK_BYTES, 0x5a));

  // n1 returns on the same port: n2's reconciler catches it up and commits it in-sync.
  const restarted = await startNode(t, 'n1', n1.dir, commands, n1Port);
  await commands.propose({ type: 'node.up', nodeId: 'n1', at: NOW });
  const rebuildDeadline = Date.now() + 20_000;
  while (findVolume(commands.state, 'db')?.replicas.find((replica) => replica.nodeId === 'n1')?.state !== 'in-sync' && Date.now() < rebuildDeadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  t.equal(findVolume(commands.state, 'db')?.replicas.find((replica) => replica.nodeId === 'n1')?.state, 'in-sync', 'n1 rebuilt and back in sync');
  const store = await restarted.pool.openVolume('vol-db', VOLUME_BYTES);
  const head = Buffer.alloc(BLOCK_BYTES);
  await store.read(0, head);
  t.ok(head.equals(Buffer.alloc(BLOCK_BYTES, 0x5a)), 'the write made while n1 was away reached it');
});
