/**
 * The LevelDB handle the Raft storage works on: one sublevel of the daemon's
 * single database, string keys and Buffer values. Encodings are passed on
 * every call so the caller's sublevel defaults do not matter.
 */
import type { AbstractBatchOptions, AbstractLevel } from 'abstract-level';

export type RaftDb = AbstractLevel<string | Buffer | Uint8Array, string, Buffer>;

export const ENCODINGS = { keyEncoding: 'utf8', valueEncoding: 'buffer' } as const;

/**
 * `sync` is a classic-level (LevelDB) option that abstract-level's types do
 * not declare; a sublevel forwards it to its root database. It makes the batch
 * durable (fsync of the LevelDB log) before the promise resolves.
 */
export const SYNC_BATCH: AbstractBatchOptions<string, Buffer> & { readonly sync: true } = { ...ENCODINGS, sync: true };
