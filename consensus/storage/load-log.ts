/**
 * Start-up verification of the stored Raft state. The rules, strictest first:
 *
 * - hard state or snapshot failing its CRC → DISK_CORRUPT: there is no safe
 *   default for a forgotten vote (§5.2: one vote per term) or a lost snapshot;
 * - a corrupt entry followed by a valid one, or a hole in the indices →
 *   DISK_CORRUPT (corruption in the middle of the log);
 * - corrupt entries only at the end (a torn tail, after the last durable
 *   write) → truncated with a warning, unless they are committed according to
 *   the hard state: then data we promised is gone, which is DISK_CORRUPT too.
 */
import type { Logger } from 'pino';
import { PlinthError } from '../../common/plinth-error.js';
import { emptyState } from '../raft/storage-state.js';
import type { Entry, HardState, RaftStorageState, Snapshot } from '../raft/types.js';
import { crc32c } from './crc32c.js';
import { entryKey, entryRange, HARD_STATE_KEY, indexOfEntryKey, SNAPSHOT_DATA_KEY, SNAPSHOT_META_KEY } from './key-layout.js';
import { CorruptRecord, decodeEntryRecord, decodeHardStateRecord, decodeSnapshotRecord } from './record-codec.js';
import { ENCODINGS, type RaftDb } from './raft-db.js';

export interface LoadedRaftState {
  readonly state: RaftStorageState;
  readonly isNew: boolean;
}

export async function loadRaftState(db: RaftDb, logger: Logger): Promise<LoadedRaftState> {
  const hardState = await loadHardState(db);
  const snapshot = await loadSnapshot(db);
  const snapshotIndex = snapshot?.metadata.index ?? 0;
  const { entries, tornFromIndex } = await loadEntries(db, snapshotIndex);
  const commit = hardState?.commit ?? 0;
  if (tornFromIndex !== null) {
    if (tornFromIndex <= commit) {
      throw corrupt('a committed log entry failed its checksum', { index: tornFromIndex, commit });
    }
    logger.warn({ fromIndex: tornFromIndex }, 'raft storage: torn tail after the last durable write, truncating it');
    await db.clear({ ...entryRange(tornFromIndex), keyEncoding: 'utf8' });
  }
  const lastIndex = entries.at(-1)?.index ?? snapshotIndex;
  if (commit > lastIndex) throw corrupt('hard state commits beyond the stored log', { commit, lastIndex });
  const isNew = hardState === null && snapshot === null && entries.length === 0;
  return {
    state: { hardState: hardState ?? emptyState().hardState, snapshot, entries },
    isNew,
  };
}

async function loadHardState(db: RaftDb): Promise<HardState | null> {
  const record = await db.get(HARD_STATE_KEY, ENCODINGS);
  if (record === undefined) return null;
  const hardState = decodeHardStateRecord(record);
  if (hardState instanceof CorruptRecord) throw corrupt(`hard state: ${hardState.reason}`, {});
  return hardState;
}

async function loadSnapshot(db: RaftDb): Promise<Snapshot | null> {
  const record = await db.get(SNAPSHOT_META_KEY, ENCODINGS);
  if (record === undefined) return null;
  const meta = decodeSnapshotRecord(record);
  if (meta instanceof CorruptRecord) throw corrupt(`snapshot metadata: ${meta.reason}`, {});
  const data = await db.get(SNAPSHOT_DATA_KEY, ENCODINGS);
  if (data === undefined || data.length !== meta.dataBytes || crc32c(data) !== meta.dataCrc) {
    throw corrupt('snapshot data is missing or fails its checksum', { index: meta.metadata.index });
  }
  return { metadata: meta.metadata, data: Buffer.from(data) };
}

/** Reads entries after the snapshot; reports where a corrupt tail starts, if any. */
async function loadEntries(db: RaftDb, snapshotIndex: number): Promise<{ entries: Entry[]; tornFromIndex: number | null }> {
  const entries: Entry[] = [];
  let firstCorruptIndex: number | null = null;
  let expectedIndex = snapshotIndex + 1;
  for await (const [key, value] of db.iterator({ ...entryRange(snapshotIndex + 1), ...ENCODINGS })) {
    const keyIndex = indexOfEntryKey(key);
    if (keyIndex === null) throw corrupt('unparseable log entry key', { key });
    if (keyIndex !== expectedIndex) throw corrupt('hole in the log', { expectedIndex, foundIndex: keyIndex });
    expectedIndex++;
    const entry = decodeEntryRecord(value);
    const problem = entry instanceof CorruptRecord ? entry.reason : entry.index !== keyIndex ? 'index does not match its key' : null;
    if (problem !== null) {
      firstCorruptIndex ??= keyIndex;
      continue;
    }
    if (firstCorruptIndex !== null) {
      throw corrupt('corrupt log entry in the middle of the log', { index: firstCorruptIndex, key: entryKey(firstCorruptIndex) });
    }
    entries.push(entry as Entry);
  }
  return { entries, tornFromIndex: firstCorruptIndex };
}

function corrupt(message: string, details: Record<string, unknown>): PlinthError {
  return new PlinthError('DISK_CORRUPT', `raft storage: ${message}`, details);
}
