/**
 * A SQLite workload for crash tests on a filesystem (issue #4 "Show it": a
 * database on ext4 on a replicated volume survives the owner's death with
 * every committed transaction present).
 *
 * The writer (Debian's /usr/bin/python3 and its sqlite3 module) runs
 * transactions back to back at a durable `synchronous` level (see
 * DURABLE_SYNCHRONOUS); transaction N inserts
 * 1 + N % 4 rows of seeded pseudo-random payload (each with its sha256) and
 * sets meta.last = N, and only after COMMIT has returned prints N on stdout.
 * A printed N is therefore a promise SQLite made: "durable". The verifier
 * reopens the database (WAL or rollback-journal recovery runs here), runs
 * `PRAGMA integrity_check`, and checks that the transactions present are
 * exactly 1..last with every row's payload equal to what the writer
 * generated: a torn, lost or half-applied transaction shows up either here or
 * as a printed id above `last`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exitsWithin, killAndWait, run, toolEnv } from './e2e-process.js';

export const SYSTEM_PYTHON = '/usr/bin/python3';

/** SQLite journal modes the workload runs under (PRAGMA journal_mode). */
export type SqliteJournalMode = 'wal' | 'delete';

/**
 * The `PRAGMA synchronous` level that makes a returned COMMIT durable in each
 * journal mode (sqlite.org/pragma.html#pragma_synchronous). In WAL mode FULL
 * syncs the WAL at every commit. In DELETE mode the commit point is the
 * unlink of the rollback journal, and FULL does not sync the directory after
 * it: a crash right after COMMIT returned may leave the journal in place and
 * the next open rolls the "committed" transaction back. EXTRA adds that
 * directory sync; without it this test loses the last transaction by
 * SQLite's own design, not by the storage's.
 */
export const DURABLE_SYNCHRONOUS: Readonly<Record<SqliteJournalMode, string>> = { wal: 'FULL', delete: 'EXTRA' };

/** Output kept from the writer's stderr (for failure messages). */
const MAX_STDERR_CHARS = 20_000;
/** A writer prints one short line per commit; more than this means a runaway. */
const MAX_COMMITS = 1_000_000;

const WORKLOAD_PY = String.raw`import hashlib, json, os, random, sqlite3, sys, time

def rows_in(txn):
    return 1 + txn % 4

def payload(txn, seq):
    rng = random.Random(txn * 16 + seq)
    return rng.randbytes(rng.randrange(64, 6000))

def connect(path):
    # isolation_level=None: BEGIN/COMMIT are ours, the module adds none.
    return sqlite3.connect(path, isolation_level=None, timeout=5)

def write(path, mode, synchronous, seconds):
    db = connect(path)
    actual = db.execute("PRAGMA journal_mode=" + mode).fetchone()[0]
    db.execute("PRAGMA synchronous=" + synchronous)
    db.execute("CREATE TABLE IF NOT EXISTS rows(txn INTEGER, seq INTEGER, payload BLOB, sha TEXT, PRIMARY KEY (txn, seq))")
    db.execute("CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v INTEGER)")
    level = db.execute("PRAGMA synchronous").fetchone()[0]
    print(json.dumps({"journal_mode": actual, "synchronous": level}), flush=True)
    deadline = time.monotonic() + float(seconds)
    txn = 0
    while time.monotonic() < deadline:
        txn += 1
        db.execute("BEGIN IMMEDIATE")
        for seq in range(rows_in(txn)):
            body = payload(txn, seq)
            db.execute("INSERT INTO rows VALUES (?, ?, ?, ?)", (txn, seq, body, hashlib.sha256(body).hexdigest()))
        db.execute("INSERT OR REPLACE INTO meta VALUES ('last', ?)", (txn,))
        db.execute("COMMIT")
        # Printed only once COMMIT has returned: SQLite says it is durable.
        print(txn, flush=True)
    print(json.dumps({"finished": txn}), flush=True)

def verify(path):
    # A hot rollback journal left by the crash: opening the database rolls it back.
    journal = path + "-journal"
    hot_journal = os.path.exists(journal) and os.path.getsize(journal) > 0
    db = connect(path)
    integrity = [row[0] for row in db.execute("PRAGMA integrity_check")]
    mode = db.execute("PRAGMA journal_mode").fetchone()[0]
    meta = db.execute("SELECT v FROM meta WHERE k = 'last'").fetchone()
    last = 0 if meta is None else meta[0]
    counts = dict(db.execute("SELECT txn, count(*) FROM rows GROUP BY txn"))
    problems = []
    for txn in range(1, last + 1):
        if counts.get(txn) != rows_in(txn):
            problems.append("txn %d has %s rows, expected %d" % (txn, counts.get(txn), rows_in(txn)))
    extra = sorted(txn for txn in counts if txn < 1 or txn > last)
    if extra:
        problems.append("rows of transactions above meta.last=%d: %s" % (last, extra[:20]))
    for txn, seq, body, sha in db.execute("SELECT txn, seq, payload, sha FROM rows"):
        if bytes(body) != payload(txn, seq) or hashlib.sha256(body).hexdigest() != sha:
            problems.append("txn %d row %d: payload or checksum differs" % (txn, seq))
        if len(problems) > 50:
            break
    print(json.dumps({"integrity": integrity, "journal_mode": mode, "last": last, "problems": problems, "hot_journal": hot_journal}), flush=True)

if __name__ == "__main__":
    {"write": write, "verify": verify}[sys.argv[1]](*sys.argv[2:])
`;

/** Write the workload script into `dir`; returns its path. */
export async function writeSqliteWorkload(dir: string): Promise<string> {
  const path = join(dir, 'sqlite-workload.py');
  await writeFile(path, WORKLOAD_PY);
  return path;
}

export interface SqliteWriterOptions {
  readonly script: string;
  readonly dbPath: string;
  readonly journalMode: SqliteJournalMode;
  /** PRAGMA synchronous; default DURABLE_SYNCHRONOUS for the journal mode. */
  readonly synchronous?: string;
  /** The writer stops by itself after this long (a bound even if nobody kills it). */
  readonly maxDurationMs: number;
}

/** A running writer: the ids it reported committed, and how to stop it. */
export class SqliteWriter {
  readonly journalMode: SqliteJournalMode;
  readonly synchronous: string;
  /** Transaction ids whose COMMIT returned, in order. */
  readonly committed: number[] = [];
  /** The journal mode SQLite confirmed (the PRAGMA's answer), once the schema exists. */
  confirmedJournalMode: string | undefined;
  readonly #child: ChildProcess;
  #stderr = '';
  #partialLine = '';

  constructor(options: SqliteWriterOptions) {
    this.journalMode = options.journalMode;
    const seconds = String(options.maxDurationMs / 1000);
    this.synchronous = options.synchronous ?? DURABLE_SYNCHRONOUS[options.journalMode];
    this.#child = spawn(SYSTEM_PYTHON, [options.script, 'write', options.dbPath, options.journalMode, this.synchronous, seconds], {
      env: toolEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#child.stdout?.setEncoding('utf8').on('data', (chunk: string) => this.#takeStdout(chunk));
    this.#child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      if (this.#stderr.length < MAX_STDERR_CHARS) this.#stderr += chunk;
    });
  }

  get running(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null;
  }

  describe(): string {
    const status = this.running ? 'running' : `exited ${this.#child.exitCode ?? this.#child.signalCode}`;
    const stderr = this.#stderr.trim() === '' ? '' : ` stderr: ${this.#stderr.slice(-2000)}`;
    return `${this.journalMode} writer (synchronous=${this.synchronous}, ${status}, ${this.committed.length} commits)${stderr}`;
  }

  /**
   * Give the writer `graceMs` to die of its I/O errors, then SIGKILL it. A
   * process blocked in the kernel on a dead FUSE server only dies once that
   * I/O fails, so this waits at most `graceMs + killTimeoutMs` and returns
   * whether it is gone.
   */
  async stop(graceMs: number, killTimeoutMs: number): Promise<boolean> {
    if (!(await exitsWithin(this.#child, graceMs))) {
      this.#child.kill('SIGKILL');
      if (!(await exitsWithin(this.#child, killTimeoutMs))) return false;
    }
    return true;
  }

  /** Teardown: SIGKILL and wait (bounded). */
  async kill(): Promise<void> {
    await killAndWait(this.#child, 'SIGKILL', 5_000);
  }

  #takeStdout(chunk: string): void {
    const lines = (this.#partialLine + chunk).split('\n');
    // The last piece has no newline yet: an id is committed only once its whole line is in.
    this.#partialLine = lines.pop() ?? '';
    for (const line of lines) {
      if (/^\d+$/.test(line)) {
        if (this.committed.length < MAX_COMMITS) this.committed.push(Number(line));
      } else if (line.startsWith('{')) {
        const parsed: unknown = JSON.parse(line);
        if (typeof parsed === 'object' && parsed !== null && 'journal_mode' in parsed && typeof parsed.journal_mode === 'string') {
          this.confirmedJournalMode = parsed.journal_mode;
        }
      }
    }
  }
}

export interface SqliteVerdict {
  /** `PRAGMA integrity_check` rows: ['ok'] when clean. */
  readonly integrity: string[];
  readonly journalMode: string;
  /** meta.last: the newest transaction in the database. */
  readonly last: number;
  /** Missing rows, rows beyond `last`, payload or checksum mismatches. */
  readonly problems: string[];
  /** A non-empty `-journal` file was there before the verifier opened the database (rolled back on open). */
  readonly hotJournal: boolean;
}

/** Reopen the database (SQLite recovers its journal) and check it; throws if the verifier fails to run. */
export async function verifySqliteDb(script: string, dbPath: string, timeoutMs: number): Promise<SqliteVerdict> {
  const result = await run(SYSTEM_PYTHON, [script, 'verify', dbPath], { timeoutMs });
  const line = result.stdout.trim().split('\n').at(-1) ?? '';
  if (result.code !== 0 || !line.startsWith('{')) {
    throw new Error(`sqlite verify of ${dbPath} failed (${result.code ?? result.signal}): ${result.stderr.slice(-2000)}`);
  }
  const parsed = JSON.parse(line) as { integrity: string[]; journal_mode: string; last: number; problems: string[]; hot_journal: boolean };
  return { integrity: parsed.integrity, journalMode: parsed.journal_mode, last: parsed.last, problems: parsed.problems, hotJournal: parsed.hot_journal };
}
