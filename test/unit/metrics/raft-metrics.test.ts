import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import t from 'tap';
import { PeerListener } from '../../../daemon/cluster/peer-listener.js';
import { startClusterNode } from '../../../daemon/cluster/start-cluster-node.js';
import { registerRaftMetrics } from '../../../daemon/metrics/raft-metrics.js';

const logger = pino({ level: 'silent' });
const ADDRESSES = { api: '127.0.0.1:1', peer: '127.0.0.1:2', nbd: '127.0.0.1:3', iscsi: '127.0.0.1:4' };

function sample(text: string, series: string): number {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? Number.NaN : Number(line.slice(series.length + 1));
}

t.test('term, indexes, leadership and proposal latency follow a real Raft node', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'plinth-raft-metrics-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const db = new Level<string, Buffer>(join(dir, 'db'), { valueEncoding: 'buffer' });
  await db.open();
  const peerListener = new PeerListener({ listen: { host: '127.0.0.1', port: 0 } }, { logger });
  const peerAddress = await peerListener.listen();
  const node = await startClusterNode(
    { nodeId: 'n1', dataDir: dir, addresses: ADDRESSES, labels: {}, peerAddress, join: null, tickMs: 20, startTimeoutMs: 10_000 },
    { raftDb: db.sublevel<string, Buffer>('raft', { valueEncoding: 'buffer' }), peerListener, logger },
  );
  t.teardown(async () => {
    await node.stop();
    await peerListener.close();
    await db.close();
  });

  const registry = new Registry();
  const unsubscribe = registerRaftMetrics(registry, {
    status: () => node.raft.status(),
    leaderChanges: () => node.raft.leaderChanges,
    onProposalApplied: (listener) => node.commands.onProposalApplied(listener),
  });
  t.teardown(unsubscribe);

  const before = await registry.metrics();
  t.equal(sample(before, 'plinth_raft_is_leader'), 1, 'a one-member cluster leads itself');
  t.ok(sample(before, 'plinth_raft_term') >= 1);
  t.equal(sample(before, 'plinth_raft_leader_changes_total'), 1, 'it saw one leader: itself');
  t.equal(sample(before, 'plinth_raft_proposal_duration_seconds_count'), 0);
  const commitBefore = sample(before, 'plinth_raft_commit_index');
  const appliedBefore = sample(before, 'plinth_raft_applied_index');

  for (let index = 0; index < 3; index++) {
    await node.commands.propose({ type: 'volume.create', id: `v${index}`, name: `v${index}`, sizeBytes: 4096, createdAt: '2026-01-01T00:00:00.000Z' });
  }
  const after = await registry.metrics();
  t.ok(sample(after, 'plinth_raft_commit_index') >= commitBefore + 3, 'the commit index moved with the entries');
  t.ok(sample(after, 'plinth_raft_applied_index') >= appliedBefore + 3, 'so did the applied index');
  t.equal(sample(after, 'plinth_raft_proposal_duration_seconds_count'), 3, 'one latency sample per proposal');
  t.ok(sample(after, 'plinth_raft_proposal_duration_seconds_sum') > 0);
  t.equal(sample(after, 'plinth_raft_proposal_duration_seconds_bucket{le="+Inf"}'), 3);
  t.equal(sample(after, 'plinth_raft_leader_changes_total'), 1, 'no leader change meanwhile');
});

t.test('the leader-changes counter only goes up by what happened since the last scrape', async (t) => {
  let changes = 2;
  const registry = new Registry();
  registerRaftMetrics(registry, {
    status: () => ({ term: 7, commitIndex: 10, appliedIndex: 9, role: 'follower' }),
    leaderChanges: () => changes,
    onProposalApplied: () => () => undefined,
  });
  t.equal(sample(await registry.metrics(), 'plinth_raft_leader_changes_total'), 2);
  changes = 5;
  const text = await registry.metrics();
  t.equal(sample(text, 'plinth_raft_leader_changes_total'), 5);
  t.equal(sample(text, 'plinth_raft_is_leader'), 0);
  t.equal(sample(text, 'plinth_raft_commit_index') - sample(text, 'plinth_raft_applied_index'), 1, 'the apply lag is commit - applied');
});
