import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { pino } from 'pino';
import type { Test } from 'tap';
import type { DiskPool } from '../../../blockdev/pool/disk-pool.js';
import { openPool } from '../../../blockdev/pool/open-pool.js';
import { RemoteReplica, type RemoteReplicaOptions } from '../../../blockdev/replica/remote-replica.js';
import { type ReplicaServer, type ReplicaServerOptions, startReplicaServer } from '../../../blockdev/replica/replica-server.js';

/** A real replica node in a temp dir: level db, pool on a sparse file disk, replica server on 127.0.0.1:0. */

export const silentLogger = pino({ level: 'silent' });
export const SECRET = Buffer.from('replica-test-cluster-secret-0123456789');
export const MiB = 1024 * 1024;
export const VOLUME_BYTES = 32 * MiB;

export async function makeTempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'plinth-replica-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

export interface ReplicaNode {
  readonly root: Level<string, string>;
  readonly pool: DiskPool;
  readonly server: ReplicaServer;
  /** Stop serving and drop everything without flushing: what a crash leaves on disk (synced writes only matter). */
  crash(): Promise<void>;
}

export async function startReplicaNode(t: Test, dir: string, options: Partial<ReplicaServerOptions> = {}): Promise<ReplicaNode> {
  const root = new Level<string, string>(join(dir, 'db'));
  const poolDb = root.sublevel<string, Buffer>('pool', { valueEncoding: 'buffer' });
  const replicaDb = root.sublevel<string, Buffer>('replica', { valueEncoding: 'buffer' });
  const pool = await openPool({ disks: [{ path: join(dir, 'disk0.img'), sizeBytes: 256 * MiB }], extentSizeBytes: 1 * MiB }, { db: poolDb, logger: silentLogger });
  const server = await startReplicaServer({ host: '127.0.0.1', port: 0, nodeId: 'node-b', secret: SECRET, ...options }, { pool, db: replicaDb, logger: silentLogger });
  let stopped = false;
  const crash = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    await server.close();
    await pool.closeWithoutFlush();
    await root.close();
  };
  t.teardown(crash);
  return { root, pool, server, crash };
}

export async function connectReplica(t: Test, server: ReplicaServer, options: Partial<RemoteReplicaOptions> = {}): Promise<RemoteReplica> {
  const { port } = server.address();
  const replica = new RemoteReplica(
    { host: '127.0.0.1', port, nodeId: 'node-a', secret: SECRET, volumeId: 'vol-1', sizeBytes: VOLUME_BYTES, generation: 1, requestTimeoutMs: 5000, ...options },
    { logger: silentLogger },
  );
  t.teardown(() => replica.close());
  await replica.connect();
  return replica;
}

/** Deterministic non-zero bytes, different per seed. */
export function pattern(lengthBytes: number, seed: number): Buffer {
  const bytes = Buffer.alloc(lengthBytes);
  let state = (seed * 2654435761) >>> 0 || 1;
  for (let index = 0; index < lengthBytes; index += 1) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    bytes[index] = (state & 0xff) | 1;
  }
  return bytes;
}
