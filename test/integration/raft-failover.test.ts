/**
 * Three real processes on loopback: leader crash (kill -9) and restart from
 * the same data dir.
 */
import t from 'tap';
import { putViaLeader, waitUntil } from './fixtures/cluster-ops.js';
import { ProcessCluster } from './fixtures/raft-process-cluster.js';

const IDS = ['n1', 'n2', 'n3'];

t.test('kill -9 the leader: a new leader commits within 3 election timeouts; the old one rejoins', async (t) => {
  const cluster = await ProcessCluster.create(100);
  t.teardown(() => cluster.close());
  await cluster.bootstrap(IDS);
  const first = await cluster.waitForLeader(10_000);
  for (let i = 0; i < 50; i++) await putViaLeader(cluster, `k${i}`, `v${i}`, Date.now() + 5000);

  cluster.kill9(first);
  const killedAt = Date.now();
  const second = await putViaLeader(cluster, 'after-failover', 'yes', killedAt + 10_000);
  const failoverMs = Date.now() - killedAt;
  t.not(second, first, 'a different node leads');
  t.ok(failoverMs < 3 * cluster.electionTimeoutMs, `new leader committed ${failoverMs} ms after the kill (budget ${3 * cluster.electionTimeoutMs} ms)`);

  await cluster.restart(first);
  await waitUntil(async () => (await cluster.status(first))?.keys === 51, 10_000, 'restarted node to catch up');
  const statuses = await cluster.statuses();
  t.equal(statuses.get(first)?.role, 'follower', 'the restarted node follows');
  t.equal(statuses.get(first)?.leaderId, second);
  const read = await cluster.request(second, { op: 'get', key: 'k7' });
  t.same(read, { id: read['id'], ok: true, value: 'v7' }, 'linearizable read after failover');
});

t.test('a whole-cluster crash loses no acknowledged write', async (t) => {
  const cluster = await ProcessCluster.create(100);
  t.teardown(() => cluster.close());
  await cluster.bootstrap(IDS);
  await cluster.waitForLeader(10_000);
  const acknowledged: string[] = [];
  for (let i = 0; i < 30; i++) {
    await putViaLeader(cluster, `d${i}`, 'x', Date.now() + 5000);
    acknowledged.push(`d${i}`);
  }
  for (const id of IDS) cluster.kill9(id);
  for (const id of IDS) await cluster.restart(id);
  const leader = await cluster.waitForLeader(10_000);
  for (const key of acknowledged) {
    const reply = await cluster.request(leader, { op: 'get', key });
    if (reply['value'] !== 'x') t.fail(`${key} lost after crash: ${JSON.stringify(reply)}`);
  }
  t.pass(`${acknowledged.length} acknowledged writes survived kill -9 of every node`);
});
