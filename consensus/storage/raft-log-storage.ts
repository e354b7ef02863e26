/**
 * Durable Raft state in one LevelDB sublevel: hard state, log entries and the
 * latest snapshot. The runner calls `persist(ready)` and sends the Ready's
 * messages only after it resolves: every write goes out as ONE atomic batch,
 * with { sync: true } whenever it holds entries, a snapshot or a new term or
 * vote, because a vote or an append acknowledgement promises durable state
 * (Raft Figure 2, "updated on stable storage before responding").
 *
 * Start-up (`open`) verifies every record's CRC (load-log.ts): a corrupt entry
 * with valid entries after it, a corrupt hard state or snapshot, or a hole in
 * the log is DISK_CORRUPT; a corrupt uncommitted last entry is a torn tail and
 * is truncated with a warning.
 */
import type { Logger } from 'pino';
import { PlinthError } from '../../common/plinth-error.js';
import type { Entry, HardState, RaftStorageState, Snapshot } from '../raft/types.js';
import { entryKey, entryRange, HARD_STATE_KEY, SNAPSHOT_DATA_KEY, SNAPSHOT_META_KEY } from './key-layout.js';
import { loadRaftState } from './load-log.js';
import { ENCODINGS, SYNC_BATCH, type RaftDb } from './raft-db.js';
import { encodeEntryRecord, encodeHardStateRecord, encodeSnapshotRecord } from './record-codec.js';

export type { RaftDb } from './raft-db.js';

type BatchOp = { type: 'put'; key: string; value: Buffer } | { type: 'del'; key: string };

export interface PersistInput {
  readonly hardState?: HardState;
  readonly entries: readonly Entry[];
  readonly snapshot?: Snapshot;
}

export interface OpenedRaftStorage {
  readonly storage: RaftLogStorage;
  readonly state: RaftStorageState;
  /** True when the sublevel held no Raft state at all (first start). */
  readonly isNew: boolean;
}

export class RaftLogStorage {
  readonly #db: RaftDb;
  readonly #logger: Logger;
  /** Index of the first stored entry (snapshot index + 1). */
  #firstIndex: number;
  /** Index of the last stored entry; firstIndex - 1 when the log is empty. */
  #lastIndex: number;
  /** Last hard state written, to tell a term/vote change (synced) from a commit-only one. */
  #hardState: HardState | null = null;

  private constructor(db: RaftDb, logger: Logger, firstIndex: number, lastIndex: number) {
    this.#db = db;
    this.#logger = logger;
    this.#firstIndex = firstIndex;
    this.#lastIndex = lastIndex;
  }

  /** Load and verify the stored state; throws DISK_CORRUPT (see file comment). */
  static async open(db: RaftDb, modules: { logger: Logger }): Promise<OpenedRaftStorage> {
    const loaded = await loadRaftState(db, modules.logger);
    const snapshotIndex = loaded.state.snapshot?.metadata.index ?? 0;
    const lastIndex = loaded.state.entries.at(-1)?.index ?? snapshotIndex;
    const storage = new RaftLogStorage(db, modules.logger, snapshotIndex + 1, lastIndex);
    if (!loaded.isNew) storage.#hardState = loaded.state.hardState;
    return { storage, state: loaded.state, isNew: loaded.isNew };
  }

  get firstIndex(): number {
    return this.#firstIndex;
  }

  get lastIndex(): number {
    return this.#lastIndex;
  }

  /**
   * Durably write what a Ready asks to persist (types.ts step 1): a snapshot
   * from the leader replaces the whole log; new entries first drop any stored
   * conflicting suffix (§5.3 "delete the existing entry and all that follow").
   */
  async persist(input: PersistInput): Promise<void> {
    const ops: BatchOp[] = [];
    let firstIndex = this.#firstIndex;
    let lastIndex = this.#lastIndex;
    let compactBelow = 0;
    if (input.snapshot !== undefined) {
      const { metadata, data } = input.snapshot;
      ops.push({ type: 'put', key: SNAPSHOT_META_KEY, value: encodeSnapshotRecord(metadata, data) });
      ops.push({ type: 'put', key: SNAPSHOT_DATA_KEY, value: data });
      // Entries after the snapshot go in the same batch (they would otherwise
      // be read back as the log after it); those at or below it are ignored on
      // load and cleared afterwards.
      for (let index = Math.max(firstIndex, metadata.index + 1); index <= lastIndex; index++) ops.push({ type: 'del', key: entryKey(index) });
      compactBelow = metadata.index + 1;
      firstIndex = metadata.index + 1;
      lastIndex = metadata.index;
    }
    const first = input.entries[0];
    if (first !== undefined) {
      this.#assertAppendable(first.index, firstIndex, lastIndex);
      for (let index = first.index; index <= lastIndex; index++) ops.push({ type: 'del', key: entryKey(index) });
      let expected = first.index;
      for (const entry of input.entries) {
        if (entry.index !== expected) throw new PlinthError('INTERNAL', 'entries to persist are not contiguous', { expected, got: entry.index });
        ops.push({ type: 'put', key: entryKey(entry.index), value: encodeEntryRecord(entry) });
        expected++;
      }
      lastIndex = expected - 1;
    }
    if (input.hardState !== undefined) ops.push({ type: 'put', key: HARD_STATE_KEY, value: encodeHardStateRecord(input.hardState) });
    if (ops.length === 0) return;
    await this.#db.batch(ops, this.#mustSync(input) ? SYNC_BATCH : ENCODINGS);
    if (input.hardState !== undefined) this.#hardState = input.hardState;
    this.#firstIndex = firstIndex;
    this.#lastIndex = lastIndex;
    if (compactBelow > 0) await this.#clearEntriesBelow(compactBelow);
  }

  /**
   * Store a snapshot the local state machine took at `snapshot.metadata.index`
   * (an applied, hence committed, index) and compact the log up to it (§7).
   */
  async saveLocalSnapshot(snapshot: Snapshot): Promise<void> {
    const { metadata, data } = snapshot;
    if (metadata.index < this.#firstIndex - 1 || metadata.index > this.#lastIndex) {
      throw new PlinthError('INVALID_ARGUMENT', 'snapshot index outside the stored log', {
        index: metadata.index,
        firstIndex: this.#firstIndex,
        lastIndex: this.#lastIndex,
      });
    }
    await this.#db.batch(
      [
        { type: 'put', key: SNAPSHOT_META_KEY, value: encodeSnapshotRecord(metadata, data) },
        { type: 'put', key: SNAPSHOT_DATA_KEY, value: data },
      ],
      SYNC_BATCH,
    );
    const compactBelow = metadata.index + 1;
    this.#firstIndex = compactBelow;
    await this.#clearEntriesBelow(compactBelow);
  }

  /**
   * Entries, snapshots, term and vote are promises to peers and must be on
   * disk before any message leaves (Figure 2). The commit index alone is
   * volatile state in the paper: losing its latest value in a crash only
   * delays re-learning it from the leader, so it rides along unsynced (like
   * etcd's mustSync). LevelDB's log is sequential, so a later synced batch
   * makes it durable too, and it never runs ahead of entries written before it.
   */
  #mustSync(input: PersistInput): boolean {
    if (input.entries.length > 0 || input.snapshot !== undefined) return true;
    const next = input.hardState;
    return next !== undefined && (this.#hardState === null || next.term !== this.#hardState.term || next.vote !== this.#hardState.vote);
  }

  /** Whether `hardState`'s term and vote are already on disk (only its commit may differ). */
  isTermAndVoteDurable(hardState: HardState): boolean {
    return this.#hardState !== null && hardState.term === this.#hardState.term && hardState.vote === this.#hardState.vote;
  }

  #assertAppendable(index: number, firstIndex: number, lastIndex: number): void {
    // Appending past the end leaves a hole; rewriting at or below the snapshot
    // would contradict a committed state. Both are core bugs: fail loudly.
    if (index > lastIndex + 1 || index < firstIndex) {
      throw new PlinthError('INTERNAL', 'entries to persist do not attach to the stored log', { index, firstIndex, lastIndex });
    }
  }

  /** Compaction (§7): drop entries the snapshot covers. Safe to lose in a crash: load ignores them. */
  async #clearEntriesBelow(indexExclusive: number): Promise<void> {
    await this.#db.clear({ ...entryRange(0, indexExclusive), keyEncoding: 'utf8' });
    this.#logger.debug({ belowIndex: indexExclusive }, 'raft storage: log compacted');
  }
}
