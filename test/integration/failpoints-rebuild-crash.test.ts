/**
 * Issue 7, a crash mid-rebuild: rebuild.mid-copy=crash on the owner n1
 * while it catches n3 up (n3 was down during writes, then restarted). The
 * owner dies part-way through the copy; n3 stays out of the in-sync set
 * (invariant 4: only a complete catch-up re-enters it). The volume fails
 * over to n2, whose reconciler restarts the rebuild and completes it;
 * with n1 back the volume is healthy, and n3's copy holds every
 * acknowledged write.
 */
import t from 'tap';
import {
  armFailpoints, createVolumeOn, inspectVolume, startFailpointCluster, startFailpointMember, verifyAcked, waitHealthy, writeAcked,
  writeAckedClient,
} from './fixtures/failpoint-cluster.js';
import { eventually } from './fixtures/replication-cluster.js';

t.test('the owner crashes mid-rebuild: the rebuild restarts on the new owner and completes', async (t) => {
  const script = await writeAckedClient(t);
  const [n1, n2, n3] = await startFailpointCluster(t);
  await createVolumeOn(t, n1, 'fpe', '64MiB', 3);
  const before = await writeAcked(script, n1.nbdUri('fpe'), { count: 20, seed: 7 });
  t.ok(before.done, 'written on all three');

  await n3.kill();
  const during = await writeAcked(script, n1.nbdUri('fpe'), { count: 200, seed: 8, flushEvery: 50, firstBlock: 4096 });
  t.ok(during.done, `written while n3 is down (${during.error ?? 'no error'})`);
  t.match(await inspectVolume(n1, 'fpe'), { state: 'degraded' }, 'degraded without n3');

  // The catch-up copies n3's missed regions chunk by chunk; the third chunk kills the owner.
  await armFailpoints(t, n1, 'rebuild.mid-copy=crash:skip=2');
  const n3Again = await startFailpointMember(t, 'n3', { restartOf: n3 });
  const exit = await n1.waitForExit({ timeoutMs: 30_000 });
  t.equal(exit.signal, 'SIGKILL', 'the owner crashed mid-copy');
  t.match(n1.stderr(), /failpoint rebuild\.mid-copy: crashing/);
  const afterCrash = await eventually('n2 to see the committed state', 10_000, async () => inspectVolume(n2, 'fpe'));
  const n3State = afterCrash.replicas.find((replica) => replica.nodeId === 'n3')?.state;
  t.not(n3State, 'in-sync', `n3 did not re-enter the in-sync set on a partial copy (${String(n3State)})`);

  const acked = new Map([...before.acked, ...during.acked]);
  const onN2 = await eventually('n2 to take the volume over', 40_000, async () => verifyAcked(t, script, n2.nbdUri('fpe'), acked));
  t.same({ checked: onN2.checked, bad: onN2.bad }, { checked: acked.size, bad: [] }, 'every acknowledged write is intact on n2');

  await startFailpointMember(t, 'n1', { restartOf: n1 });
  const healthy = await waitHealthy(n2, 'fpe', 45_000);
  t.match(healthy, { attachedTo: 'n2' }, 'the rebuild restarted on n2 and completed: healthy');

  const moved = await n3Again.api('POST', '/v1/volumes/fpe/attach', { node: 'n3', force: true }, { timeoutMs: 20_000 });
  t.equal(moved.status, 200, 'forced attach on n3');
  const onN3 = await eventually('n3 to serve the volume', 20_000, async () => verifyAcked(t, script, n3Again.nbdUri('fpe'), acked));
  t.same(onN3.bad, [], 'n3, rebuilt after the interrupted copy, holds every acknowledged write');
});
