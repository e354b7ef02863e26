import t from 'tap';
import { putCommand } from '../../../integration/fixtures/kv-state-machine.js';
import { addVoter, removeVoter } from '../../../../consensus/node/membership.js';
import { ClusterHarness, waitFor } from './cluster-harness.js';

const IDS = ['n1', 'n2', 'n3'];

async function startCluster(t: { teardown(fn: () => Promise<void>): void }, snapshotEveryEntries?: number): Promise<ClusterHarness> {
  const cluster = await ClusterHarness.create(IDS);
  t.teardown(() => cluster.close());
  for (const id of IDS) await cluster.start(id, snapshotEveryEntries === undefined ? {} : { snapshotEveryEntries });
  return cluster;
}

t.test('a 3-node cluster elects a leader and applies proposals everywhere', async (t) => {
  const cluster = await startCluster(t);
  const leader = await cluster.waitForLeader();
  const result = await leader.propose(putCommand('a', '1'));
  t.equal(result.previous, null);
  t.equal((await leader.propose(putCommand('a', '2'))).previous, '1');
  await waitFor(() => [...cluster.members.values()].every((m) => m.kv.data.get('a') === '2'), 3000, 'replication');
  t.pass('every node applied both commands');
});

t.test('proposals of one turn share one entry (batching)', async (t) => {
  const cluster = await startCluster(t);
  const leader = await cluster.waitForLeader();
  await leader.propose(putCommand('warm', 'up'));
  const before = leader.status().lastIndex;
  const results = await Promise.all(Array.from({ length: 200 }, (_, i) => leader.propose(putCommand(`k${i}`, `${i}`))));
  const entriesUsed = leader.status().lastIndex - before;
  t.ok(entriesUsed <= 2, `200 proposals took ${entriesUsed} entries`);
  t.equal(new Set(results.map((r) => r.index)).size, entriesUsed);
});

t.test('followers refuse proposals and reads with NOT_LEADER and a hint', async (t) => {
  const cluster = await startCluster(t);
  const leader = await cluster.waitForLeader();
  await leader.propose(putCommand('x', 'y'));
  const follower = cluster.running().find((n) => n !== leader);
  if (follower === undefined) throw new Error('no follower');
  await waitFor(() => follower.leaderId === leader.nodeId, 3000, 'follower to learn the leader');
  await t.rejects(follower.propose(putCommand('x', 'z')), { code: 'NOT_LEADER', details: { leaderHint: leader.nodeId } });
  await t.rejects(follower.read(), { code: 'NOT_LEADER' });
});

t.test('read() is a linearizable barrier: it sees every acknowledged write', async (t) => {
  const cluster = await startCluster(t);
  const leader = await cluster.waitForLeader();
  const leaderKv = [...cluster.members.values()].find((m) => m.id === leader.nodeId)?.kv;
  for (let i = 0; i < 20; i++) {
    await leader.propose(putCommand('counter', `${i}`));
    const readIndex = await leader.read();
    t.ok(leader.appliedIndex >= readIndex);
    if (leaderKv?.data.get('counter') !== `${i}`) t.fail(`read after write ${i} saw ${leaderKv?.data.get('counter')}`);
  }
  const reads = await Promise.all(Array.from({ length: 50 }, () => leader.read()));
  t.equal(new Set(reads).size, 1, 'reads of one turn share one ReadIndex round');
});

t.test('a killed leader is replaced and a restarted node catches up from its own disk', async (t) => {
  const cluster = await startCluster(t);
  const first = await cluster.waitForLeader();
  for (let i = 0; i < 30; i++) await first.propose(putCommand(`k${i}`, 'v'));
  const firstId = first.nodeId;
  await cluster.stop(firstId);
  const second = await cluster.waitForLeader(5000);
  t.not(second.nodeId, firstId);
  await second.propose(putCommand('after', 'failover'));
  await cluster.start(firstId);
  const restarted = cluster.members.get(firstId);
  await waitFor(() => restarted?.kv.data.get('after') === 'failover' && restarted.kv.data.size === 31, 5000, 'restarted node to catch up');
  t.pass('restarted node has every write');
});

t.test('snapshots compact the log and ship to a node that fell behind (§7)', async (t) => {
  const cluster = await startCluster(t, 20);
  const leader = await cluster.waitForLeader();
  const laggard = IDS.find((id) => id !== leader.nodeId) ?? 'n3';
  await cluster.stop(laggard);
  // Sequential proposals: one entry each (batching would pack them into a few).
  for (let round = 0; round < 10; round++) {
    for (let i = 0; i < 20; i++) await leader.propose(putCommand(`r${round}-${i}`, 'v'));
  }
  await waitFor(() => leader.status().snapshotIndex > 0, 3000, 'a snapshot');
  t.ok(leader.status().firstIndex > 1, 'log compacted');
  await cluster.start(laggard, { snapshotEveryEntries: 20 });
  const member = cluster.members.get(laggard);
  // The laggard may also catch up from the log and then compact on its own; snapshotIndex
  // is set once that local snapshot is durable, a moment after the last apply.
  await waitFor(() => member?.kv.data.size === 200 && cluster.node(laggard).status().snapshotIndex > 0, 5000, 'laggard to install the snapshot');
  t.ok(cluster.node(laggard).status().snapshotIndex > 0, 'laggard restored from a snapshot');
  t.ok(cluster.node(laggard).status().firstIndex > 1, JSON.stringify(cluster.node(laggard).status()));
});

t.test('addVoter brings a fourth node in as learner then voter; removeVoter takes one out', async (t) => {
  const cluster = await startCluster(t);
  const leader = await cluster.waitForLeader();
  await leader.propose(putCommand('before', 'join'));
  const joiner = await cluster.prepare('n4');
  await cluster.start('n4', { bootstrap: false });
  await addVoter(leader, 'n4', joiner.address, { timeoutMs: 5000, pollMs: 20 });
  t.same([...leader.status().confState.voters].sort(), ['n1', 'n2', 'n3', 'n4']);
  await waitFor(() => joiner.kv.data.get('before') === 'join', 3000, 'joiner to apply the log');
  const victim = IDS.find((id) => id !== leader.nodeId) ?? 'n3';
  await removeVoter(leader, victim, { timeoutMs: 5000, pollMs: 20 });
  t.notOk(leader.status().confState.voters.includes(victim));
  await leader.propose(putCommand('after', 'remove'));
  await waitFor(() => joiner.kv.data.get('after') === 'remove', 3000, 'remaining members to commit');
});

t.test('stop() fails queued work with SHUTTING_DOWN; an AbortSignal stops the node', async (t) => {
  const cluster = await startCluster(t);
  const leader = await cluster.waitForLeader();
  const inFlight = leader.propose(putCommand('late', 'x')).then(
    () => 'committed',
    (err: unknown) => (err instanceof Error && 'code' in err ? String(err.code) : 'other'),
  );
  await leader.stop();
  t.match(await inFlight, /^(committed|SHUTTING_DOWN)$/);
  await t.rejects(leader.propose(putCommand('after', 'stop')), { code: 'SHUTTING_DOWN' });
  const follower = cluster.running().find((n) => n !== leader);
  if (follower === undefined) throw new Error('no follower');
  const controller = new AbortController();
  const aborted = await cluster.restartWithSignal(follower.nodeId, controller.signal);
  controller.abort();
  await waitFor(() => aborted.role === 'follower', 1000, 'abort');
  await t.rejects(aborted.read(), { code: 'SHUTTING_DOWN' });
});
