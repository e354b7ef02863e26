import t from 'tap';
import pino from 'pino';
import { entryKey, HARD_STATE_KEY, SNAPSHOT_DATA_KEY } from '../../../../consensus/storage/key-layout.js';
import { ENCODINGS } from '../../../../consensus/storage/raft-db.js';
import { RaftLogStorage } from '../../../../consensus/storage/raft-log-storage.js';
import type { Snapshot } from '../../../../consensus/raft/types.js';
import { entries, entry, makeTempDir, openDb, removeDir, type TempDb } from './storage-helpers.js';

const logger = pino({ level: 'silent' });

async function withDb(t: { teardown(fn: () => Promise<void>): void }, body: (db: TempDb, reopen: () => Promise<TempDb>) => Promise<void>): Promise<void> {
  const dir = await makeTempDir();
  let db = await openDb(dir);
  t.teardown(async () => {
    await db.close();
    await removeDir(dir);
  });
  await body(db, async () => {
    await db.close();
    db = await openDb(dir);
    return db;
  });
}

function snapshotAt(index: number, term: number, text: string): Snapshot {
  return { metadata: { index, term, confState: { voters: ['a', 'b', 'c'], learners: ['d'] } }, data: Buffer.from(text) };
}

t.test('a fresh sublevel opens empty and reports isNew', async (t) => {
  await withDb(t, async (db) => {
    const opened = await RaftLogStorage.open(db.raft, { logger });
    t.equal(opened.isNew, true);
    t.same(opened.state.hardState, { term: 0, vote: null, commit: 0 });
    t.same(opened.state.entries, []);
    t.equal(opened.state.snapshot, null);
  });
});

t.test('hard state and entries round-trip through a reopen', async (t) => {
  await withDb(t, async (db, reopen) => {
    const { storage } = await RaftLogStorage.open(db.raft, { logger });
    await storage.persist({ hardState: { term: 3, vote: 'n2', commit: 2 }, entries: entries(1, 5, 3) });
    await storage.persist({ entries: [{ index: 6, term: 3, type: 'conf-change', data: Buffer.from('{"x":1}') }] });
    const again = await RaftLogStorage.open((await reopen()).raft, { logger });
    t.equal(again.isNew, false);
    t.same(again.state.hardState, { term: 3, vote: 'n2', commit: 2 });
    t.equal(again.state.entries.length, 6);
    t.same(again.state.entries[5], { index: 6, term: 3, type: 'conf-change', data: Buffer.from('{"x":1}') });
    t.same(again.state.entries[0], entry(1, 3));
    t.equal(again.storage.lastIndex, 6);
  });
});

t.test('a conflicting suffix is replaced (§5.3)', async (t) => {
  await withDb(t, async (db, reopen) => {
    const { storage } = await RaftLogStorage.open(db.raft, { logger });
    await storage.persist({ hardState: { term: 2, vote: null, commit: 1 }, entries: entries(1, 6, 2) });
    await storage.persist({ entries: [entry(4, 3, 'new-4')] });
    t.equal(storage.lastIndex, 4);
    const again = await RaftLogStorage.open((await reopen()).raft, { logger });
    t.same(
      again.state.entries.map((e) => [e.index, e.term]),
      [[1, 2], [2, 2], [3, 2], [4, 3]],
    );
    t.equal(again.state.entries[3]?.data.toString(), 'new-4');
  });
});

t.test('appending with a hole or below the snapshot is refused loudly', async (t) => {
  await withDb(t, async (db) => {
    const { storage } = await RaftLogStorage.open(db.raft, { logger });
    await storage.persist({ entries: entries(1, 3, 1) });
    await t.rejects(storage.persist({ entries: [entry(5, 1)] }), { code: 'INTERNAL' });
    await t.rejects(storage.persist({ entries: [entry(4, 1), entry(6, 1)] }), { code: 'INTERNAL' });
  });
});

t.test('local snapshot compacts the log (§7)', async (t) => {
  await withDb(t, async (db, reopen) => {
    const { storage } = await RaftLogStorage.open(db.raft, { logger });
    await storage.persist({ hardState: { term: 1, vote: 'a', commit: 8 }, entries: entries(1, 10, 1) });
    await storage.saveLocalSnapshot(snapshotAt(8, 1, 'image-at-8'));
    t.equal(storage.firstIndex, 9);
    const reopened = await reopen();
    const keys = await reopened.raft.keys(ENCODINGS).all();
    t.notOk(keys.includes(entryKey(8)), 'compacted entries are deleted');
    t.ok(keys.includes(entryKey(9)));
    const again = await RaftLogStorage.open(reopened.raft, { logger });
    t.same(again.state.snapshot?.metadata, { index: 8, term: 1, confState: { voters: ['a', 'b', 'c'], learners: ['d'] } });
    t.equal(again.state.snapshot?.data.toString(), 'image-at-8');
    t.same(again.state.entries.map((e) => e.index), [9, 10]);
    await t.rejects(again.storage.saveLocalSnapshot(snapshotAt(11, 1, 'x')), { code: 'INVALID_ARGUMENT' });
  });
});

t.test('a snapshot from the leader replaces the whole log', async (t) => {
  await withDb(t, async (db, reopen) => {
    const { storage } = await RaftLogStorage.open(db.raft, { logger });
    await storage.persist({ hardState: { term: 1, vote: null, commit: 2 }, entries: entries(1, 7, 1) });
    await storage.persist({ snapshot: snapshotAt(20, 4, 'leader-image'), hardState: { term: 4, vote: null, commit: 20 }, entries: [entry(21, 4)] });
    t.equal(storage.firstIndex, 21);
    t.equal(storage.lastIndex, 21);
    const again = await RaftLogStorage.open((await reopen()).raft, { logger });
    t.equal(again.state.snapshot?.metadata.index, 20);
    t.same(again.state.entries.map((e) => e.index), [21]);
    t.same(again.state.hardState, { term: 4, vote: null, commit: 20 });
  });
});

t.test('a torn uncommitted tail is truncated with a warning', async (t) => {
  await withDb(t, async (db, reopen) => {
    const { storage } = await RaftLogStorage.open(db.raft, { logger });
    await storage.persist({ hardState: { term: 2, vote: 'a', commit: 3 }, entries: entries(1, 5, 2) });
    await tamper(db, entryKey(5));
    await tamper(db, entryKey(4));
    const warnings: string[] = [];
    const recording = pino({ level: 'warn' }, { write: (line: string) => warnings.push(line) });
    const again = await RaftLogStorage.open((await reopen()).raft, { logger: recording });
    t.same(again.state.entries.map((e) => e.index), [1, 2, 3]);
    t.match(warnings.join(''), /torn tail/);
    await again.storage.persist({ entries: [entry(4, 3)] });
    const third = await RaftLogStorage.open((await reopen()).raft, { logger });
    t.same(third.state.entries.map((e) => [e.index, e.term]), [[1, 2], [2, 2], [3, 2], [4, 3]]);
  });
});

t.test('a corrupt committed tail is DISK_CORRUPT, not truncated', async (t) => {
  await withDb(t, async (db, reopen) => {
    const { storage } = await RaftLogStorage.open(db.raft, { logger });
    await storage.persist({ hardState: { term: 2, vote: 'a', commit: 5 }, entries: entries(1, 5, 2) });
    await tamper(db, entryKey(5));
    await t.rejects(RaftLogStorage.open((await reopen()).raft, { logger }), { code: 'DISK_CORRUPT' });
  });
});

t.test('corruption in the middle of the log is DISK_CORRUPT', async (t) => {
  await withDb(t, async (db, reopen) => {
    const { storage } = await RaftLogStorage.open(db.raft, { logger });
    await storage.persist({ hardState: { term: 2, vote: 'a', commit: 1 }, entries: entries(1, 5, 2) });
    await tamper(db, entryKey(3));
    await t.rejects(RaftLogStorage.open((await reopen()).raft, { logger }), { code: 'DISK_CORRUPT', message: /middle/ });
  });
});

t.test('a hole in the log, a corrupt hard state or snapshot is DISK_CORRUPT', async (t) => {
  await withDb(t, async (db, reopen) => {
    const { storage } = await RaftLogStorage.open(db.raft, { logger });
    await storage.persist({ hardState: { term: 2, vote: 'a', commit: 1 }, entries: entries(1, 5, 2) });
    await db.raft.del(entryKey(2), ENCODINGS);
    await t.rejects(RaftLogStorage.open((await reopen()).raft, { logger }), { code: 'DISK_CORRUPT', message: /hole/ });
  });
  await withDb(t, async (db, reopen) => {
    const { storage } = await RaftLogStorage.open(db.raft, { logger });
    await storage.persist({ hardState: { term: 2, vote: 'a', commit: 1 }, entries: entries(1, 2, 2) });
    await tamper(db, HARD_STATE_KEY);
    await t.rejects(RaftLogStorage.open((await reopen()).raft, { logger }), { code: 'DISK_CORRUPT', message: /hard state/ });
  });
  await withDb(t, async (db, reopen) => {
    const { storage } = await RaftLogStorage.open(db.raft, { logger });
    await storage.persist({ hardState: { term: 2, vote: 'a', commit: 2 }, entries: entries(1, 2, 2) });
    await storage.saveLocalSnapshot(snapshotAt(2, 2, 'image'));
    await tamper(db, SNAPSHOT_DATA_KEY);
    await t.rejects(RaftLogStorage.open((await reopen()).raft, { logger }), { code: 'DISK_CORRUPT', message: /snapshot/ });
  });
});

/** Flip one bit in the middle of a stored value. */
async function tamper(db: TempDb, key: string): Promise<void> {
  const value = await db.raft.get(key, ENCODINGS);
  if (value === undefined) throw new Error(`no value at ${key}`);
  const copy = Buffer.from(value);
  const at = Math.floor(copy.length / 2);
  copy[at] = (copy[at] ?? 0) ^ 0x10;
  await db.raft.put(key, copy, ENCODINGS);
}
