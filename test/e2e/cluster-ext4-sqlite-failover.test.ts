/**
 * Issue #4 "Show it": ext4 on nbdfuse on a 3-replica volume with a SQLite
 * workload; kill -9 the owner; remount on a survivor: fsck clean, database
 * integrity clean, every committed transaction present.
 *
 * Three plinthd on 127.0.0.1 with short liveness (replication-cluster.ts ENV).
 * The volume is attached through n1's NBD port (nbdfuse + losetup + ext4).
 * Two SQLite writers run on it at once, one in WAL mode (synchronous=FULL)
 * and one with the rollback journal (synchronous=EXTRA: with FULL, SQLite
 * itself does not make the journal's unlink durable, so a crash right after
 * COMMIT loses that transaction on any disk; DURABLE_SYNCHRONOUS says more),
 * each printing a transaction id only after COMMIT returned
 * (e2e-sqlite-workload.ts). n1 is SIGKILLed right after the slower writer's
 * COMMITS_BEFORE_KILL-th commit returned, with the other writer mid-flight, so
 * the survivor's failover resync (ARCHITECTURE invariant 4) has torn regions
 * to settle and every FLUSH the writers saw complete must be on the replicas
 * (invariant 1).
 */
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { makeTempDir } from '../helpers/daemon-harness.js';
import { startCluster } from '../integration/fixtures/replication-cluster.js';
import { BlockStack, blockStackUnavailableReason } from '../setup/e2e-block-stack.js';
import { attachWhenServed } from '../setup/e2e-failover-attach.js';
import { describeRun, missingToolsReason, run, runOk } from '../setup/e2e-process.js';
import { SqliteWriter, verifySqliteDb, writeSqliteWorkload, type SqliteJournalMode } from '../setup/e2e-sqlite-workload.js';

const TOOL_TIMEOUT_MS = 30_000;
const VOLUME = 'sqlite-vol';
const JOURNAL_MODES: readonly SqliteJournalMode[] = ['wal', 'delete'];
/** Kill n1 once every writer has this many commits (or at the deadline below). */
const COMMITS_BEFORE_KILL = 100;
const WORKLOAD_BEFORE_KILL_MAX_MS = 25_000;
/** Below this the test would prove little: it fails instead. */
const MIN_MEANINGFUL_COMMITS = 50;
/** The writers' own bound, should the test never kill n1. */
const WRITER_MAX_DURATION_MS = 45_000;
const FAILOVER_ATTACH_TIMEOUT_MS = 40_000;

const skip =
  missingToolsReason(['nbdfuse', 'nbdsh', 'losetup', 'mkfs.ext4', 'e2fsck', 'mount', 'umount', 'fusermount3', 'python3']) ??
  blockStackUnavailableReason();

t.test('ext4 + SQLite on a 3-replica volume survive kill -9 of the owner', { skip: skip ?? false }, async (t) => {
  const workDir = await makeTempDir(t, 'plinth-e2e-sqlite-');
  const script = await writeSqliteWorkload(workDir);
  const [n1, n2] = await startCluster(t, { dataDirPrefix: 'plinth-sqlite-' });
  // Registered after the daemons: tap tears the stacks down (newest first)
  // before the daemons are killed and the dirs removed.
  const ownerStack = new BlockStack(workDir, 'n1');
  const survivorStack = new BlockStack(workDir, 'n2');
  t.teardown(async () => {
    for (const stack of [survivorStack, ownerStack]) {
      const problems = await stack.detach();
      if (problems.length > 0) t.comment(`teardown problems: ${problems.join('; ')}`);
    }
  });
  const created = await n1.api('POST', '/v1/volumes', { name: VOLUME, size: '256MiB', replicas: 3 });
  t.equal(created.status, 201, `create ${VOLUME}: ${JSON.stringify(created.body)}`);

  const writers: SqliteWriter[] = [];
  let killedAt = 0;
  t.teardown(async () => {
    await Promise.all(writers.map((writer) => writer.kill()));
  });

  await t.test('ext4 through n1, SQLite writers running, kill -9 n1', async (t) => {
    const device = await ownerStack.attach(n1.nbdUri(VOLUME));
    // Inode tables and journal initialized now, not by ext4lazyinit racing the workload.
    await runOk('mkfs.ext4', ['-q', '-F', '-E', 'lazy_itable_init=0,lazy_journal_init=0', device], { timeoutMs: TOOL_TIMEOUT_MS });
    await ownerStack.mount();
    for (const mode of JOURNAL_MODES) {
      const dbPath = join(ownerStack.paths.mountDir, `${mode}.db`);
      writers.push(new SqliteWriter({ script, dbPath, journalMode: mode, maxDurationMs: WRITER_MAX_DURATION_MS }));
    }
    await waitForCommits(writers, COMMITS_BEFORE_KILL, WORKLOAD_BEFORE_KILL_MAX_MS);
    const attached = await n1.api('GET', `/v1/volumes/${VOLUME}`);
    t.match(attached.body, { attachedTo: 'n1', state: 'healthy' }, 'n1 owns the volume, all replicas in sync');
    await n1.kill();
    killedAt = Date.now();
    for (const writer of writers) {
      t.equal(writer.confirmedJournalMode, writer.journalMode, `SQLite runs in ${writer.journalMode} mode`);
      t.ok(writer.committed.length > MIN_MEANINGFUL_COMMITS, `${writer.describe()}: committed > ${MIN_MEANINGFUL_COMMITS} before the kill`);
    }
  });
  // Setup failed before the kill (its subtest says why): nothing to check on n2.
  if (killedAt === 0) return;

  await t.test('the writers fail, the stale stack comes down', async (t) => {
    // They hit I/O errors (or block on them); either way they must go before the stack does.
    for (const writer of writers) t.ok(await writer.stop(3_000, 10_000), `${writer.journalMode} writer is gone`);
    t.same(await ownerStack.detach(), [], 'n1 mount, loop device and fuse mount all removed');
    for (const writer of writers) t.comment(`${writer.journalMode}: ${writer.committed.length} transactions reported committed`);
  });

  await t.test('remount on n2: fsck clean, databases intact', async (t) => {
    const { device, servedAt } = await attachWhenServed(survivorStack, n2.nbdUri(VOLUME), FAILOVER_ATTACH_TIMEOUT_MS);
    // The crash left a journal to replay. Mounting replays it (and cleans up
    // orphans) the way a user's remount would, and a clean unmount marks the
    // filesystem clean; only then is the read-only full check honest:
    // `e2fsck -fn` neither replays nor repairs, so anything it reports is
    // damage the crash plus ext4's own recovery could not explain away.
    await survivorStack.mount();
    const remountedAt = Date.now();
    await runOk('umount', [survivorStack.paths.mountDir], { timeoutMs: TOOL_TIMEOUT_MS });
    const fsck = await run('e2fsck', ['-f', '-n', device], { timeoutMs: TOOL_TIMEOUT_MS });
    t.equal(fsck.code, 0, `e2fsck -fn is clean: ${describeRun(fsck)}`);

    await survivorStack.mount();
    for (const writer of writers) await checkDatabase(t, script, join(survivorStack.paths.mountDir, `${writer.journalMode}.db`), writer);
    t.comment(`failover: kill -9 n1 → n2 serves the volume ${servedAt - killedAt} ms; → ext4 remounted on n2 ${remountedAt - killedAt} ms`);

    const after = await n2.api('GET', `/v1/volumes/${VOLUME}`);
    t.match(after.body, { attachedTo: 'n2', state: 'degraded' }, "n2 owns the volume; n1's replica left the in-sync set");
    // Unmount while n2 is alive so ext4 writes its clean state.
    t.same(await survivorStack.detach(), [], 'clean unmount and detach on n2');
  });
});

/** Until every writer has `count` commits, or the deadline, or a writer died (the caller's assertions say which). */
async function waitForCommits(writers: readonly SqliteWriter[], count: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (writers.every((writer) => writer.committed.length >= count)) return;
    if (writers.some((writer) => !writer.running)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function checkDatabase(t: Test, script: string, dbPath: string, writer: SqliteWriter): Promise<void> {
  const verdict = await verifySqliteDb(script, dbPath, TOOL_TIMEOUT_MS);
  const mode = writer.journalMode;
  t.comment(`${mode}: hot journal at open: ${verdict.hotJournal}`);
  t.same(verdict.integrity, ['ok'], `${mode}: PRAGMA integrity_check is ok`);
  t.same(verdict.problems, [], `${mode}: transactions 1..${verdict.last} complete, every payload and checksum matches`);
  const reported = writer.committed;
  t.ok(reported.every((id, index) => id === index + 1), `${mode}: the writer reported ids 1..${reported.length} in order`);
  const newest = reported.at(-1) ?? 0;
  t.ok(verdict.last >= newest, `${mode}: every reported commit is present (newest reported ${newest}, newest in the database ${verdict.last})`);
}
