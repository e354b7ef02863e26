import t from 'tap';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { RaftLogStorage } from '../../../../consensus/storage/raft-log-storage.js';
import { makeTempDir, openDb, removeDir } from './storage-helpers.js';

const writer = fileURLToPath(new URL('./crash-writer.js', import.meta.url));

/** Runs the writer until it reports `minIndex` durable, SIGKILLs it, returns the last reported index. */
async function crashWriterAfter(dir: string, minIndex: number): Promise<number> {
  const child = spawn(process.execPath, [writer, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  let lastDurable = 0;
  let buffered = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('writer made no progress within 15 s')), 15_000);
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) lastDurable = Number(line.split(' ')[1]);
      if (lastDurable >= minIndex && child.exitCode === null && !child.killed) {
        child.kill('SIGKILL');
      }
    });
    child.on('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
  return lastDurable;
}

t.test('entries whose persist resolved survive SIGKILL of the writer', async (t) => {
  const dir = await makeTempDir();
  t.teardown(() => removeDir(dir));
  let acknowledged = 0;
  for (let round = 1; round <= 2; round++) {
    acknowledged = await crashWriterAfter(dir, acknowledged + 200);
    const db = await openDb(dir);
    try {
      const { state } = await RaftLogStorage.open(db.raft, { logger: pino({ level: 'silent' }) });
      const last = state.entries.at(-1)?.index ?? 0;
      t.ok(last >= acknowledged, `round ${round}: last stored ${last} >= acknowledged ${acknowledged}`);
      t.equal(state.entries.length, last, 'no hole from 1 to the last entry');
      t.ok(state.hardState.commit <= last);
    } finally {
      await db.close();
    }
  }
});
