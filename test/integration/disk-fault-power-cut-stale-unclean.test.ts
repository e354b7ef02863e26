/**
 * A finding of the chaos soak (issue 7; `npm run soak -- --minutes 10 --seed
 * 202`: six model violations, acknowledged writes read back as their
 * previous version), reduced to one scenario: power-cut-owner-resync.test.ts
 * with one more step before it: n2 and n3 were each killed once and restarted
 * earlier (long before the volume even exists).
 *
 * The owner n1 runs over the power-loss disk layer; its client's writes are
 * acknowledged but not flushed; n1 loses power at the next FLUSH, restarts,
 * and its client reconnects to it. The failover resync must not pick n1 as
 * the source: its un-synced writes are gone. It does (soak log: "in-flight
 * regions reconciled", sourceId n1), because the "unclean restart" flag
 * (daemon/lifecycle/run-marker.ts → ReplicaService `uncleanRestart`, sent in
 * every GET_ACTIVITY answer) is per process and never clears: n2 and n3 still
 * carry it from their own old crash, all three replicas rank last alike in
 * failover-resync.ts sourceOrder, and the local n1 wins the tie. n1's stale
 * regions are then copied over n2 and n3: the acknowledged writes are lost
 * everywhere.
 *
 * Fixed (blockdev/replica + daemon/volume): the flag now means "this
 * replica may lack writes it acknowledged and has not been repaired since":
 * kept per volume and durably by the replica service (replica-database.ts
 * `unclean!`), set for every volume held at an unclean start (not for one
 * created later), and cleared by the owner's MARK_REPAIRED once the replica
 * was made identical to a source (a failover resync that copied to it, or a
 * rebuild before it is committed in sync).
 */
import t from 'tap';
import { startFailpointMember, waitAllUp, waitHealthy } from './fixtures/failpoint-cluster.js';
import { OP_TIMEOUT_MS, POWER_LOSS_ENV as POWER_LOSS, powerCutOwnerLosesNothing, SLOW_DOWN_DETECTOR_ENV as ENV, writeBlocks } from './fixtures/power-cut-owner.js';
import { NbdWorker } from '../soak/nbd-worker.js';
import { BlockModel } from '../soak/soak-model.js';

const PREFIX = 'plinth-fp-unclean-';

t.test('a power cut of the owner loses nothing when the other replicas restarted uncleanly long before', async (t) => {
  const n1 = await startFailpointMember(t, 'n1', { env: POWER_LOSS, dataDirPrefix: PREFIX });
  let n2 = await startFailpointMember(t, 'n2', { join: n1, env: ENV, dataDirPrefix: PREFIX });
  let n3 = await startFailpointMember(t, 'n3', { join: n2, env: ENV, dataDirPrefix: PREFIX });
  // Each of n2 and n3 crashes once and comes back: their run markers now say "unclean" for as long as they run.
  await n2.kill();
  n2 = await startFailpointMember(t, 'n2', { restartOf: n2, env: ENV });
  await n3.kill();
  n3 = await startFailpointMember(t, 'n3', { restartOf: n3, env: ENV });
  t.match(n2.stdout() + n3.stdout(), /did not shut down cleanly/, 'n2 and n3 know their previous run ended uncleanly');

  const created = await n1.api('POST', '/v1/volumes', { name: 'pcu', size: '16MiB', replicas: 3 });
  t.equal(created.status, 201, `create: ${JSON.stringify(created.body)}`);
  const worker = new NbdWorker();
  t.teardown(() => worker.close());
  const model = new BlockModel('pcu', 4096);
  t.match(await worker.request({ op: 'connect', uri: n1.nbdUri('pcu') }, OP_TIMEOUT_MS), { ok: true }, 'connected to n1 (the owner)');
  t.match(await worker.request({ op: 'flush' }, OP_TIMEOUT_MS), { ok: true }, 'allocation and metadata made durable first');
  await powerCutOwnerLosesNothing(t, n1, worker, model, 'pcu');
});

/**
 * The soak's own shape: n2 and n3 crash while they hold the volume (their
 * replicas there are flagged unclean, rightly: they may have lost writes),
 * the owner faults each, and its rebuild repairs it (MARK_REPAIRED before
 * replica.in-sync). Their flags are gone by the time the owner loses power,
 * so they do not tie with it as failover source.
 */
t.test('replicas that crashed holding the volume are repaired by their rebuild: the owner\'s later power cut loses nothing', async (t) => {
  const n1 = await startFailpointMember(t, 'n1', { env: POWER_LOSS, dataDirPrefix: PREFIX });
  const n2 = await startFailpointMember(t, 'n2', { join: n1, env: ENV, dataDirPrefix: PREFIX });
  const n3 = await startFailpointMember(t, 'n3', { join: n2, env: ENV, dataDirPrefix: PREFIX });
  await waitAllUp(n1, 3);
  const created = await n1.api('POST', '/v1/volumes', { name: 'pcr', size: '16MiB', replicas: 3 });
  t.equal(created.status, 201, `create: ${JSON.stringify(created.body)}`);
  const worker = new NbdWorker();
  t.teardown(() => worker.close());
  const model = new BlockModel('pcr', 4096);
  t.match(await worker.request({ op: 'connect', uri: n1.nbdUri('pcr') }, OP_TIMEOUT_MS), { ok: true }, 'connected to n1 (the owner)');
  for (const [index, replica] of [n2, n3].entries()) {
    await writeBlocks(worker, model, 8, (block) => block * 17 + 1 + index);
    t.match(await worker.request({ op: 'flush' }, OP_TIMEOUT_MS), { ok: true }, 'written and flushed while every replica is in sync');
    await replica.kill();
    // Writes while it is down fault it out of the in-sync set (invariant 2); its rebuild follows its restart.
    await writeBlocks(worker, model, 8, (block) => block * 17 + 3 + index);
    const restarted = await startFailpointMember(t, replica === n2 ? 'n2' : 'n3', { restartOf: replica, env: ENV });
    t.match(restarted.stdout(), /did not shut down cleanly/, `${replica === n2 ? 'n2' : 'n3'} restarted uncleanly, holding the volume`);
    await waitHealthy(n1, 'pcr', 60_000);
    t.pass(`${replica === n2 ? 'n2' : 'n3'} rebuilt and back in sync`);
  }
  await powerCutOwnerLosesNothing(t, n1, worker, model, 'pcr');
});
