/** Temp LevelDB + sublevel helpers shared by the Raft storage tests. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import type { Entry } from '../../../../consensus/raft/types.js';
import type { RaftDb } from '../../../../consensus/storage/raft-db.js';

export interface TempDb {
  readonly dir: string;
  readonly root: Level<string, Buffer>;
  readonly raft: RaftDb;
  close(): Promise<void>;
}

export async function makeTempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'plinth-raft-storage-'));
}

export async function openDb(dir: string): Promise<TempDb> {
  const root = new Level<string, Buffer>(join(dir, 'db'), { valueEncoding: 'buffer' });
  await root.open();
  const raft = root.sublevel<string, Buffer>('raft', { valueEncoding: 'buffer' });
  return { dir, root, raft, close: () => root.close() };
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

export function entry(index: number, term: number, text = `cmd-${index}`): Entry {
  return { index, term, type: 'normal', data: Buffer.from(text) };
}

export function entries(from: number, to: number, term: number): Entry[] {
  const result: Entry[] = [];
  for (let i = from; i <= to; i++) result.push(entry(i, term));
  return result;
}
