import t from 'tap';
import { PlinthError } from '../../../common/plinth-error.js';
import { REMOVAL_APPLY_WAIT_MS, reportUnlessRemoved } from '../../../daemon/volume/replica-failure-report.js';
import { silentLogger } from '../replica/replica-fixture.js';
import { FakeCluster } from './fake-cluster.js';

/** reportUnlessRemoved over a FakeCluster, with a virtual clock. */

function setup(): { cluster: FakeCluster; commits: string[]; clock: { nowMs: number }; sleeps: number[] } {
  const cluster = new FakeCluster('db', 1024 * 1024, ['n1', 'n2', 'n3']);
  return { cluster, commits: [], clock: { nowMs: 0 }, sleeps: [] };
}

function removeFromState(cluster: FakeCluster, nodeId: string): void {
  cluster.placement = { ...cluster.placement, replicas: cluster.placement.replicas.filter((replica) => replica.nodeId !== nodeId) };
}

t.test('a replica still in the committed state is reported as before', async (t) => {
  const { cluster, commits } = setup();
  const report = reportUnlessRemoved('db', async (replicaId) => void commits.push(replicaId), { cluster, logger: silentLogger });
  await report('n2', {});
  t.same(commits, ['n2']);
});

t.test('a replica whose removal is committed is not reported', async (t) => {
  const { cluster, commits } = setup();
  removeFromState(cluster, 'n3');
  const report = reportUnlessRemoved('db', async (replicaId) => void commits.push(replicaId), { cluster, logger: silentLogger });
  await report('n3', {});
  t.same(commits, [], 'nothing proposed');
});

t.test('a refusal followed by the removal applying here is not a failure', async (t) => {
  const { cluster, clock, sleeps } = setup();
  const report = reportUnlessRemoved(
    'db',
    () => Promise.reject(new PlinthError('INVALID_ARGUMENT', 'volume db has no replica on node n3')),
    {
      cluster,
      logger: silentLogger,
      nowMs: () => clock.nowMs,
      sleep: async (ms) => {
        sleeps.push(ms);
        clock.nowMs += ms;
        // The removal the leader refused against reaches this node's applied state a little later.
        if (clock.nowMs >= 100) removeFromState(cluster, 'n3');
      },
    },
  );
  await report('n3', {});
  t.ok(sleeps.length > 0 && clock.nowMs < REMOVAL_APPLY_WAIT_MS, 'waited for the removal to apply, not longer');
});

t.test('a refusal without a removal, and any other failure, still fail the report', async (t) => {
  const { cluster, clock } = setup();
  const options = {
    cluster,
    logger: silentLogger,
    nowMs: () => clock.nowMs,
    sleep: async (ms: number) => {
      clock.nowMs += ms;
    },
  };
  const refused = reportUnlessRemoved('db', () => Promise.reject(new PlinthError('INVALID_ARGUMENT', 'last in-sync replica')), options);
  await t.rejects(refused('n2', {}), { code: 'INVALID_ARGUMENT' });
  t.ok(clock.nowMs >= REMOVAL_APPLY_WAIT_MS, 'gave up after the bounded wait');
  const startMs = clock.nowMs;
  const noQuorum = reportUnlessRemoved('db', () => Promise.reject(new PlinthError('TIMEOUT', 'no quorum')), options);
  await t.rejects(noQuorum('n2', {}), { code: 'TIMEOUT' });
  t.equal(clock.nowMs, startMs, 'no wait for a failure that is not a refusal');
});
