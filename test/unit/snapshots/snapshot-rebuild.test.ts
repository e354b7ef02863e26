/**
 * daemon/snapshots/snapshot-rebuild.ts against real pools and replica
 * servers on loopback (docs/snapshots.md "Rebuilds"): a source replica with
 * s1 (pattern A), s2 (B over the middle, one extent trimmed) and live data
 * C; two replicas that lack both, rebuilt once from this node's pool
 * (extent lists) and once from a remote holder (SNAPSHOT_READ). Each ends
 * up with both snapshots bit for bit, is recorded as a holder, and its live
 * data is restored where the copy wrote.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { pino } from 'pino';
import t, { type Test } from 'tap';
import { openPool } from '../../../blockdev/pool/open-pool.js';
import type { Pool } from '../../../blockdev/pool/pool-types.js';
import { Opcode } from '../../../blockdev/replica/replica-protocol.js';
import type { ReplicaLink } from '../../../blockdev/replica/replica-link.js';
import { type ReplicaServer, startReplicaServer } from '../../../blockdev/replica/replica-server.js';
import { findVolume } from '../../../daemon/state/cluster-state.js';
import { MemoryProposer } from '../../helpers/memory-proposer.js';
import { SnapshotRebuild, type RebuildSessionView } from '../../../daemon/snapshots/snapshot-rebuild.js';
import { SnapshotReplicaClient } from '../../../daemon/snapshots/snapshot-replica-client.js';

const logger = pino({ level: 'silent' });
const MiB = 1024 * 1024;
const VOLUME_BYTES = 16 * MiB;
const SECRET = Buffer.from('snapshot-rebuild-test-secret-0123456789');
const AT = '2026-11-26T00:00:00.000Z';
const VOLUME_ID = 'vol-snaprb';

interface Node {
  readonly nodeId: string;
  readonly pool: Pool;
  readonly server: ReplicaServer;
}

async function startNode(t: Test, nodeId: string): Promise<Node> {
  const dir = await mkdtemp(join(tmpdir(), `plinth-snaprb-unit-${nodeId}-`));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const db = new Level<string, string>(join(dir, 'db'));
  const pool = await openPool({ disks: [{ path: join(dir, 'disk0.img'), sizeBytes: 64 * MiB }], extentSizeBytes: MiB }, { db: db.sublevel<string, Buffer>('pool', { valueEncoding: 'buffer' }), logger });
  const server = await startReplicaServer({ host: '127.0.0.1', port: 0, nodeId, secret: SECRET }, { pool, db: db.sublevel<string, Buffer>('replica', { valueEncoding: 'buffer' }), logger });
  t.teardown(async () => {
    await server.close();
    await pool.close();
    await db.close();
  });
  return { nodeId, pool, server };
}

function pattern(seed: string, extent: number): Buffer {
  const block = createHash('sha256').update(`${seed}:${extent}`).digest();
  return Buffer.concat(Array.from({ length: MiB / block.length }, () => block));
}

async function send(link: ReplicaLink, opcode: Opcode, offset: number, lengthBytes: number, payload: Buffer = Buffer.alloc(0)): Promise<Buffer> {
  return link.send({ opcode, flags: 0, offset, lengthBytes, payload });
}

async function writeExtents(link: ReplicaLink, seed: string, extents: readonly number[]): Promise<void> {
  for (const extent of extents) await send(link, Opcode.WRITE, extent * MiB, MiB, pattern(seed, extent));
}

async function digestOf(read: (offset: number, target: Buffer) => Promise<void>): Promise<string[]> {
  const digests: string[] = [];
  for (let offset = 0; offset < VOLUME_BYTES; offset += MiB) {
    const piece = Buffer.alloc(MiB);
    await read(offset, piece);
    digests.push(createHash('sha256').update(piece).digest('hex').slice(0, 16));
  }
  return digests;
}

t.test('missing snapshots are copied into a replica, from the local pool or a remote holder', async (t) => {
  const nodes = new Map<string, Node>();
  for (const nodeId of ['src', 'tgt-local', 'tgt-remote', 'own']) nodes.set(nodeId, await startNode(t, nodeId));
  const node = (nodeId: string): Node => {
    const found = nodes.get(nodeId);
    if (found === undefined) throw new Error(`no node ${nodeId}`);
    return found;
  };
  const commands = new MemoryProposer();
  await commands.propose({ type: 'cluster.init', clusterId: 'c1' });
  for (const [nodeId, { server }] of nodes) {
    const peer = `127.0.0.1:${server.address().port}`;
    await commands.propose({ type: 'node.join', nodeId, addresses: { api: '127.0.0.1:1', peer, nbd: '127.0.0.1:2', iscsi: '127.0.0.1:3' }, joinedAt: AT });
  }
  const replicaNodes = ['src', 'tgt-local', 'tgt-remote'];
  await commands.propose({ type: 'volume.create', id: VOLUME_ID, name: 'snaprb', sizeBytes: VOLUME_BYTES, replicaCount: 3, createdAt: AT, placement: replicaNodes });
  await commands.propose({ type: 'volume.attach', name: 'snaprb', nodeId: 'src' });
  for (const nodeId of ['tgt-local', 'tgt-remote']) await commands.propose({ type: 'replica.fault', name: 'snaprb', nodeId, generation: 1, at: AT });

  const client = (nodeId: string): SnapshotReplicaClient =>
    new SnapshotReplicaClient({ nodeId, secret: SECRET }, { peerAddress: (id) => ({ host: '127.0.0.1', port: node(id).server.address().port }), logger });
  const at = { volumeId: VOLUME_ID, sizeBytes: VOLUME_BYTES, generation: 1 };
  const source = await client('src').openLink('src', at);
  t.teardown(() => source.close('test done'));
  // Pattern A over extents 0-7, s1; B over 2-5 and extent 7 trimmed, s2; C over 0-2 (live only).
  await writeExtents(source, 'A', [0, 1, 2, 3, 4, 5, 6, 7]);
  await client('src').run('src', 'create', at, 'id-s1');
  await commands.propose({ type: 'snapshot.create', name: 'snaprb', snapshotId: 'id-s1', snapshotName: 's1', createdAt: AT, generation: 1, holders: ['src'] });
  await writeExtents(source, 'B', [2, 3, 4, 5]);
  await send(source, Opcode.TRIM, 7 * MiB, MiB);
  await client('src').run('src', 'create', at, 'id-s2');
  await commands.propose({ type: 'snapshot.create', name: 'snaprb', snapshotId: 'id-s2', snapshotName: 's2', createdAt: AT, generation: 1, holders: ['src'] });
  await writeExtents(source, 'C', [0, 1, 2]);
  // The targets hold older live data the copy must not leave behind.
  for (const nodeId of ['tgt-local', 'tgt-remote']) {
    const stale = await client('src').openLink(nodeId, at);
    await writeExtents(stale, 'stale', [7, 9, 12]);
    stale.close('stale data written');
  }
  t.same(node('src').pool.changedExtents(VOLUME_ID, 'id-s1', 'id-s2'), [2, 3, 4, 5, 7], 'the trimmed extent is a changed one');

  const session: RebuildSessionView = {
    name: 'snaprb',
    volumeId: VOLUME_ID,
    generation: 1,
    volume: { sizeBytes: VOLUME_BYTES, read: (offset, target) => send(source, Opcode.READ, offset, target.length).then((data) => void data.copy(target)) },
  };
  const snapshotRead = (nodeId: string, snapshotId: string) => (offset: number, target: Buffer) => node(nodeId).server.service.snapshots.read(VOLUME_ID, snapshotId, offset, target);
  const expected = {
    s1: await digestOf(snapshotRead('src', 'id-s1')),
    s2: await digestOf(snapshotRead('src', 'id-s2')),
    live: await digestOf(session.volume.read),
  };
  t.equal(expected.s2[7], expected.s2[15], 's2 reads zeroes where extent 7 was trimmed');

  for (const [targetId, selfId] of [['tgt-local', 'src'], ['tgt-remote', 'own']] as const) {
    const self = node(selfId);
    const rebuild = new SnapshotRebuild(
      { nodeId: selfId },
      { pool: self.pool, localRead: (volumeId, snapshotId, offset, target) => self.server.service.snapshots.read(volumeId, snapshotId, offset, target), commands, client: client(selfId), logger },
    );
    const outcome = await rebuild.copyMissing(session, targetId);
    t.same(outcome.copied, ['s1', 's2'], `${targetId}: both copied (self ${selfId})`);
    t.same(outcome.skipped, []);
    // Local: s1 = the volume zeroed (16 MiB) + its 8 extents; s2 = only the 5 changed ones (4 written, 1 zeroed).
    // Remote: every byte of both (16 MiB each).
    t.equal(outcome.writtenBytes, targetId === 'tgt-local' ? 29 * MiB : 32 * MiB, `${targetId}: ${outcome.writtenBytes / MiB} MiB written`);
    const snapshots = findVolume(commands.state, 'snaprb')?.snapshots ?? [];
    t.ok(snapshots.every((snapshot) => snapshot.holders.includes(targetId)), `${targetId} recorded as a holder of both`);
    t.same(node(targetId).pool.listSnapshots(VOLUME_ID).map((info) => info.snapshotId), ['id-s1', 'id-s2'], `${targetId}'s pool holds both under the same ids`);
    t.same(await digestOf(snapshotRead(targetId, 'id-s1')), expected.s1, `${targetId}: s1 bit for bit`);
    t.same(await digestOf(snapshotRead(targetId, 'id-s2')), expected.s2, `${targetId}: s2 bit for bit (the trimmed extent reads zeroes)`);
    const target = await client(selfId).openLink(targetId, at);
    t.same(await digestOf((offset, piece) => send(target, Opcode.READ, offset, piece.length).then((data) => void data.copy(piece))), expected.live, `${targetId}: live data restored where the copy wrote`);
    target.close('checked');
    t.same(await rebuild.copyMissing(session, targetId), { copied: [], skipped: [], writtenBytes: 0 }, `${targetId}: nothing left to copy`);
  }

  // s3 on the source only; this node ("own") is no holder, so the copy needs the source up.
  await client('src').run('src', 'create', at, 'id-s3');
  await commands.propose({ type: 'snapshot.create', name: 'snaprb', snapshotId: 'id-s3', snapshotName: 's3', createdAt: AT, generation: 1, holders: ['src'] });
  const own = node('own');
  const remoteOnly = new SnapshotRebuild(
    { nodeId: 'own' },
    { pool: own.pool, localRead: (volumeId, snapshotId, offset, target) => own.server.service.snapshots.read(volumeId, snapshotId, offset, target), commands, client: client('own'), logger },
  );
  await commands.propose({ type: 'node.down', nodeId: 'src', at: AT });
  t.same(await remoteOnly.copyMissing(session, 'tgt-remote'), { copied: [], skipped: ['s3'], writtenBytes: 0 }, 'no holder up: skipped, the rebuild goes on');
  t.same(findVolume(commands.state, 'snaprb')?.snapshots?.find((snapshot) => snapshot.name === 's3')?.holders, ['src'], 'and not recorded');
  await commands.propose({ type: 'node.up', nodeId: 'src', at: AT });
  await node('tgt-remote').server.close();
  await t.rejects(remoteOnly.copyMissing(session, 'tgt-remote'), 'an unreachable target fails the attempt (the reconciler retries)');
});
