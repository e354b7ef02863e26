import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { pino } from 'pino';
import type { Test } from 'tap';
import type { DiskPool } from '../../../blockdev/pool/disk-pool.js';
import type { PoolDatabase } from '../../../blockdev/pool/metadata-store.js';
import { openPool, type OpenPoolOptions } from '../../../blockdev/pool/open-pool.js';

/** Shared set-up for the pool tests: temp dirs, a real level db, small extents. */

export const EXTENT = 64 * 1024;
export const silentLogger = pino({ level: 'silent' });

export async function makeTempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'plinth-pool-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

export interface TestDb {
  readonly root: Level<string, string>;
  readonly db: PoolDatabase;
}

/** The exact call the daemon makes (see metadata-store.ts). Closed at teardown if still open. */
export function openTestDb(t: Test, dir: string): TestDb {
  const root = new Level<string, string>(join(dir, 'meta'));
  const db = root.sublevel<string, Buffer>('pool', { valueEncoding: 'buffer' });
  t.teardown(async () => {
    if (root.status === 'open' || root.status === 'opening') {
      await root.close();
    }
  });
  return { root, db };
}

/** Open a pool and close it at teardown unless the test already closed it (close is idempotent for disks). */
export async function openTestPool(t: Test, db: TestDb, options: OpenPoolOptions): Promise<DiskPool> {
  const pool = await openPool({ extentSizeBytes: EXTENT, ...options }, { db: db.db, logger: silentLogger });
  t.teardown(() => pool.closeWithoutFlush());
  return pool;
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

export function isAllZero(bytes: Buffer): boolean {
  return bytes.every((byte) => byte === 0);
}

export async function sha256File(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}
