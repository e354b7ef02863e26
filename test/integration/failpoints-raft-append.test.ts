/**
 * Issue 7, a Raft failpoint: raft.append.before-persist=crash on a follower.
 * The next entries it receives kill it before it persisted (or acknowledged)
 * them. The other two keep committing (quorum 2 of 3): volumes are created
 * meanwhile. Restarted, the follower catches up from the leader and serves
 * every committed change (linearizable reads through it, invariant 6).
 */
import t from 'tap';
import type { DaemonProcess } from '../helpers/daemon-harness.js';
import { armFailpoints, startFailpointCluster, startFailpointMember } from './fixtures/failpoint-cluster.js';
import { eventually } from './fixtures/replication-cluster.js';

t.test('a follower crashes before persisting appended entries: the cluster commits on, the follower catches up', async (t) => {
  const members = await startFailpointCluster(t);
  const [n1] = members;
  const cluster = await n1.api('GET', '/v1/cluster');
  const leaderId = (cluster.body as { leaderId: string | null }).leaderId;
  const follower = members.find((member, index) => index > 0 && `n${index + 1}` !== leaderId);
  const via = members.find((member) => member !== follower);
  if (follower === undefined || via === undefined) throw new Error(`no follower to arm (leader ${String(leaderId)})`);
  const followerId = `n${members.indexOf(follower) + 1}`;
  t.comment(`leader ${String(leaderId)}; arming follower ${followerId}`);

  await armFailpoints(t, follower, 'raft.append.before-persist=crash:times=1');
  const first = await via.api('POST', '/v1/volumes', { name: 'raft-0', size: '16MiB', replicas: 1 });
  t.equal(first.status, 201, 'committed with the follower dying on it');
  const exit = await follower.waitForExit({ timeoutMs: 10_000 });
  t.equal(exit.signal, 'SIGKILL', `${followerId} crashed before persisting the entries`);
  t.match(follower.stderr(), /failpoint raft\.append\.before-persist: crashing/);

  const names = ['raft-1', 'raft-2', 'raft-3'];
  for (const name of names) {
    const created = await via.api('POST', '/v1/volumes', { name, size: '16MiB', replicas: 1 }, { timeoutMs: 15_000 });
    t.equal(created.status, 201, `${name} committed without ${followerId}`);
  }

  const restarted = await startFailpointMember(t, followerId, { restartOf: follower });
  const seen = await eventually(`${followerId} to catch up`, 30_000, async () => volumeNames(restarted));
  t.same(seen, ['raft-0', ...names], `${followerId} serves every change committed while it was down`);
  const later = await restarted.api('POST', '/v1/volumes', { name: 'raft-4', size: '16MiB', replicas: 1 }, { timeoutMs: 15_000 });
  t.equal(later.status, 201, `${followerId} takes part again (a create through it commits)`);
  t.same(await volumeNames(via), ['raft-0', ...names, 'raft-4'], 'and the others see it');
});

async function volumeNames(daemon: DaemonProcess): Promise<string[] | undefined> {
  const response = await daemon.api('GET', '/v1/volumes');
  if (response.status !== 200) return undefined;
  const body = response.body as { volumes: Array<{ name: string }> };
  return body.volumes.map((volume) => volume.name).sort();
}
