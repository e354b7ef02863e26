/**
 * Five real processes on loopback: a partitioned node heals without an
 * election storm (pre-vote, thesis §9.6), a removed node cannot disrupt the
 * cluster, and a killed leader of five is replaced.
 */
import t from 'tap';
import { putViaLeader, waitUntil } from './fixtures/cluster-ops.js';
import { ProcessCluster, type NodeStatus } from './fixtures/raft-process-cluster.js';

const IDS = ['n1', 'n2', 'n3', 'n4', 'n5'];

async function sleepMs(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

function majorityTerms(statuses: Map<string, NodeStatus>, except: string): number[] {
  return [...statuses].filter(([id]) => id !== except).map(([, s]) => s.term);
}

t.test('five processes: partition and heal, remove a node, kill the leader', async (t) => {
  const cluster = await ProcessCluster.create(100);
  t.teardown(() => cluster.close());
  await cluster.bootstrap(IDS);
  const leader = await cluster.waitForLeader(10_000);
  for (let i = 0; i < 20; i++) await putViaLeader(cluster, `k${i}`, 'v', Date.now() + 5000);

  await t.test('a partitioned follower rejoins without raising the majority term', async (t) => {
    const isolated = IDS.find((id) => id !== leader) ?? 'n5';
    const before = await cluster.statuses();
    const termBefore = before.get(leader)?.term ?? -1;
    // The isolated node's own fault hook drops both directions (fault-hook.ts).
    await cluster.request(isolated, { op: 'partition', peers: IDS.filter((id) => id !== isolated) });
    for (let i = 0; i < 10; i++) await putViaLeader(cluster, `p${i}`, 'v', Date.now() + 5000);
    await sleepMs(4 * cluster.electionTimeoutMs);
    const during = await cluster.statuses();
    t.equal(during.get(isolated)?.term, termBefore, 'pre-vote kept the isolated node from bumping its term');
    await Promise.all(IDS.map((id) => cluster.request(id, { op: 'heal' })));
    await waitUntil(async () => (await cluster.status(isolated))?.keys === 30, 10_000, 'isolated node to catch up');
    const after = await cluster.statuses();
    t.same(majorityTerms(after, isolated), majorityTerms(before, isolated), 'no election on the majority');
    t.equal(after.get(leader)?.role, 'leader', 'the leader kept its role');
  });

  await t.test('a removed node cannot disrupt the cluster', async (t) => {
    const removed = IDS.find((id) => id !== leader && id !== 'n5') ?? 'n4';
    // Cut it off first so it never learns about its removal and keeps trying to campaign.
    await cluster.request(removed, { op: 'partition', peers: IDS.filter((id) => id !== removed) });
    const reply = await cluster.request(leader, { op: 'remove-voter', nodeId: removed });
    t.ok(reply.ok, `remove-voter: ${JSON.stringify(reply)}`);
    const termBefore = (await cluster.status(leader))?.term;
    await sleepMs(3 * cluster.electionTimeoutMs);
    await cluster.request(removed, { op: 'heal' });
    await sleepMs(4 * cluster.electionTimeoutMs);
    const status = await cluster.status(leader);
    t.equal(status?.role, 'leader', 'the leader was not deposed');
    t.equal(status?.term, termBefore, 'the term did not move');
    t.notOk(status?.voters.includes(removed));
    await putViaLeader(cluster, 'after-remove', 'v', Date.now() + 5000);
    cluster.kill9(removed);
  });

  await t.test('kill -9 the leader of the remaining four: a new one commits within 3 election timeouts', async (t) => {
    cluster.kill9(leader);
    const killedAt = Date.now();
    const next = await putViaLeader(cluster, 'after-kill', 'v', killedAt + 10_000);
    const elapsedMs = Date.now() - killedAt;
    t.not(next, leader);
    t.ok(elapsedMs < 3 * cluster.electionTimeoutMs, `committed ${elapsedMs} ms after the kill`);
  });
});
