/**
 * Issue 7, a crash inside the pool flush: pool.flush.after-data-sync=crash
 * on a single daemon with a one-replica volume. The disks were fdatasync'd,
 * the extent-map batch was not written, the process dies. After restart
 * every write a completed FLUSH covered is intact (invariant 1); writes
 * after the last completed FLUSH may be gone but read as zeroes or as
 * exactly what was written, never garbage (invariant 5: a mapping is never
 * durable before its data, unwritten ranges read as zeroes).
 */
import t from 'tap';
import {
  armFailpoints, createVolumeOn, failpointStatus, startFailpointMember, verifyAcked, writeAcked, writeAckedClient,
} from './fixtures/failpoint-cluster.js';
import { eventually } from './fixtures/replication-cluster.js';

const FLUSHES_BEFORE_CRASH = 5;
const FLUSH_EVERY = 8;

t.test('crash after the data fdatasync, before the extent map is durable: flushed writes survive, no garbage', async (t) => {
  const script = await writeAckedClient(t);
  const solo = await startFailpointMember(t, 'solo');
  await createVolumeOn(t, solo, 'fpb', '64MiB', 1);
  // Warm-up: a few extents already mapped, so the crash meets both rewrites in place and new allocations.
  const warm = await writeAcked(script, solo.nbdUri('fpb'), { count: 16, seed: 4, flushEvery: 0 });
  t.ok(warm.done, 'warm-up written and flushed');

  await armFailpoints(t, solo, `pool.flush.after-data-sync=crash:skip=${FLUSHES_BEFORE_CRASH}`);
  const run = await writeAcked(script, solo.nbdUri('fpb'), { count: 200, seed: 5, flushEvery: FLUSH_EVERY, firstBlock: 4096 });
  t.equal(run.done, false, `the run ended early: ${run.error ?? ''}`);
  const exit = await solo.waitForExit({ timeoutMs: 10_000 });
  t.equal(exit.signal, 'SIGKILL', 'the daemon crashed at the failpoint');
  t.match(solo.stderr(), /failpoint pool\.flush\.after-data-sync: crashing/);
  t.ok(run.flushed.size >= FLUSH_EVERY, `${run.flushed.size} writes covered by a completed FLUSH`);
  const unflushed = new Map([...run.acked].filter(([offset]) => !run.flushed.has(offset)));
  t.ok(unflushed.size > 0, `${unflushed.size} acknowledged writes were not covered by a FLUSH yet`);

  const restarted = await startFailpointMember(t, 'solo', { restartOf: solo });
  t.same(await failpointStatus(restarted), [], 'nothing is armed after the restart');
  const durable = new Map([...warm.acked, ...run.flushed]);
  const verified = await eventually('the restarted daemon to serve the volume', 30_000, async () =>
    verifyAcked(t, script, restarted.nbdUri('fpb'), durable, unflushed));
  t.same({ checked: verified.checked, bad: verified.bad }, { checked: durable.size, bad: [] }, 'every flushed write is intact');
  t.same(verified.garbage, [], 'unflushed writes read as zeroes or as their data, never garbage');
});
