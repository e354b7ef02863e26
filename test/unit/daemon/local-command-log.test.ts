import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { pino } from 'pino';
import t from 'tap';
import { entryKey, LocalCommandLog } from '../../../daemon/state/local-command-log.js';
import type { Command } from '../../../daemon/state/commands.js';

const logger = pino({ level: 'silent' });
const ADDRESSES = { api: 'a:1', peer: 'a:2', nbd: 'a:3', iscsi: 'a:4' };
const BOOTSTRAP: Command[] = [
  { type: 'cluster.init', clusterId: 'c1' },
  { type: 'node.join', nodeId: 'n1', addresses: ADDRESSES, joinedAt: '2026-01-01T00:00:00.000Z' },
];

function createCommand(name: string): Command {
  return { type: 'volume.create', id: `id-${name}`, name, sizeBytes: 4096, createdAt: '2026-01-01T00:00:00.000Z' };
}

async function tempDb(t: TeardownHost): Promise<{ path: string; open: () => Promise<Level<string, unknown>> }> {
  const dir = await mkdtemp(join(tmpdir(), 'plinth-log-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'db');
  const open = async (): Promise<Level<string, unknown>> => {
    const db = new Level<string, unknown>(path, { valueEncoding: 'json' });
    await db.open();
    return db;
  };
  return { path, open };
}

interface TeardownHost {
  teardown(fn: () => unknown): void;
}

async function openLog(db: Level<string, unknown>, options = {}): Promise<LocalCommandLog> {
  return LocalCommandLog.open(options, { storage: db.sublevel<string, unknown>('state', { valueEncoding: 'json' }), logger });
}

t.test('applies in order, persists, and reloads the state after a restart', async (t) => {
  const { open } = await tempDb(t);
  const db = await open();
  const log = await openLog(db);
  t.equal(log.appliedIndex, 0);
  for (const command of BOOTSTRAP) await log.propose(command);
  const results = await Promise.all(['a', 'b', 'c'].map((name) => log.propose(createCommand(name))));
  t.same(results.map((result) => (result.type === 'volume' ? result.volume.name : '')), ['a', 'b', 'c']);
  t.equal(log.appliedIndex, 5);
  await t.rejects(log.propose(createCommand('a')), { code: 'VOLUME_EXISTS' });
  t.equal(log.appliedIndex, 5, 'a refused command takes no index');
  const before = log.state;
  await log.close();
  await db.close();

  const reopened = await open();
  const again = await openLog(reopened);
  t.equal(again.appliedIndex, 5);
  t.same(again.state, before);
  await again.close();
  await reopened.close();
});

t.test('replays entries written after the last applied state', async (t) => {
  const { open } = await tempDb(t);
  const db = await open();
  const log = await openLog(db);
  for (const command of BOOTSTRAP) await log.propose(command);
  await log.close();
  // An entry that reached the log but not the applied state: what a crash
  // between Raft's persist and apply steps leaves behind.
  const storage = db.sublevel<string, unknown>('state', { valueEncoding: 'json' });
  await storage.put(entryKey(3), createCommand('late'));
  await storage.put(entryKey(4), createCommand('late'));
  const replayed = await openLog(db);
  t.equal(replayed.appliedIndex, 4, 'a refused replayed entry still takes its index');
  t.ok(replayed.state.volumes['late'], 'the replayed entry is applied');
  await replayed.close();
  const third = await openLog(db);
  t.equal(third.appliedIndex, 4, 'the replay was persisted');
  await third.close();
  await db.close();
});

t.test('keeps a bounded number of entries', async (t) => {
  const { open } = await tempDb(t);
  const db = await open();
  const log = await openLog(db, { retainedEntries: 3 });
  for (const command of BOOTSTRAP) await log.propose(command);
  for (const name of ['a', 'b', 'c', 'd']) await log.propose(createCommand(name));
  const keys = await db.sublevel<string, unknown>('state', { valueEncoding: 'json' }).keys().all();
  t.same(keys.filter((key) => key.startsWith('entry:')), [entryKey(4), entryKey(5), entryKey(6)]);
  await log.close();
  await db.close();
});

t.test('a full queue is refused with BUSY, a closed log with SHUTTING_DOWN', async (t) => {
  const { open } = await tempDb(t);
  const db = await open();
  const log = await openLog(db, { maxPendingCommands: 2 });
  const first = log.propose(BOOTSTRAP[0] ?? createCommand('x'));
  const second = log.propose(BOOTSTRAP[1] ?? createCommand('x'));
  await t.rejects(log.propose(createCommand('a')), { code: 'BUSY' });
  await Promise.all([first, second]);
  await log.propose(createCommand('a'));
  await log.close();
  await t.rejects(log.propose(createCommand('b')), { code: 'SHUTTING_DOWN' });
  await db.close();
});

t.test('a failed write leaves the in-memory state unchanged', async (t) => {
  const { open } = await tempDb(t);
  const db = await open();
  const log = await openLog(db);
  for (const command of BOOTSTRAP) await log.propose(command);
  await db.close();
  await t.rejects(log.propose(createCommand('a')), { code: 'LEVEL_DATABASE_NOT_OPEN' });
  t.equal(log.appliedIndex, 2);
  t.same(log.state.volumes, {});
});

t.test('a corrupt stored state is refused loudly', async (t) => {
  const { open } = await tempDb(t);
  const db = await open();
  await db.sublevel<string, unknown>('state', { valueEncoding: 'json' }).put('applied', { nonsense: true });
  await t.rejects(openLog(db), { code: 'INTERNAL' });
  await db.close();
});
