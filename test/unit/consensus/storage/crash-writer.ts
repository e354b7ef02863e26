/**
 * Child process for the crash test: persists entries one Ready at a time and
 * prints the last index whose persist() resolved, until the parent kills it
 * with SIGKILL (no close, no flush: what a power cut leaves, minus the page
 * cache, which { sync: true } already pushed to the disk).
 */
import pino from 'pino';
import { RaftLogStorage } from '../../../../consensus/storage/raft-log-storage.js';
import { entries, openDb } from './storage-helpers.js';

const dir = process.argv[2];
if (dir === undefined) {
  // `tap dist/test/unit` runs every file; without arguments this is not a test.
  if (process.env['TAP'] === '1') process.exit(0);
  throw new Error('usage: crash-writer DIR');
}
const db = await openDb(dir);
const { storage } = await RaftLogStorage.open(db.raft, { logger: pino({ level: 'silent' }) });
let next = storage.lastIndex + 1;
const deadline = Date.now() + 20_000;
while (Date.now() < deadline) {
  const batch = entries(next, next + 9, 1);
  await storage.persist({ hardState: { term: 1, vote: 'a', commit: next - 1 }, entries: batch });
  next += batch.length;
  process.stdout.write(`durable ${next - 1}\n`);
}
