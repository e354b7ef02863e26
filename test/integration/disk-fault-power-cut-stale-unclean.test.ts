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
 * Fix (blockdev/replica + daemon/volume, other teammates' files at the time;
 * the assertion below is a `todo` until then): the flag must mean "this
 * replica may lack writes it acknowledged and has not been repaired since":
 * keep it per volume in the replica service, set for every volume at an
 * unclean start, and clear it for a volume once the replica has been made
 * identical to a source (a failover resync that copied to it, or a rebuild
 * committed in sync), e.g. with a flag on the owner's first request after
 * that.
 */
import t from 'tap';
import { startFailpointMember } from './fixtures/failpoint-cluster.js';
import { NbdWorker } from '../soak/nbd-worker.js';
import { BlockModel } from '../soak/soak-model.js';

const BLOCKS = 64;
const OP_TIMEOUT_MS = 20_000;
/** Keep n1 "up" in the cluster's view across its restart, as in the soak (the restart beat the down detector). */
const ENV = { PLINTH_NODE_DOWN_AFTER_MS: '30000' };
const POWER_LOSS = { ...ENV, PLINTH_TEST_DISK: 'power-loss:seed=7' };
const PREFIX = 'plinth-fp-unclean-';
const STALE_UNCLEAN_FLAG = 'known bug: the unclean-restart flag never clears, so a power-cut owner wins the tie as failover source';

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
  for (let block = 0; block < BLOCKS; block++) {
    const version = model.beginWrite(block * 17);
    const reply = await worker.request({ op: 'write', block: block * 17, version }, OP_TIMEOUT_MS);
    if (reply.ok) model.acknowledge(block * 17);
    else model.fail(block * 17);
  }
  const armed = await n1.api('PUT', '/v1/debug/failpoints', { spec: 'disk.sync=power-cut:times=1' });
  t.equal(armed.status, 200, 'power cut armed at the next disk sync of n1');
  const flush = await worker.request({ op: 'flush' }, OP_TIMEOUT_MS);
  t.equal(flush.ok, false, 'the flush failed: n1 lost power');
  await n1.waitForExit({ timeoutMs: 10_000 });

  const restarted = await startFailpointMember(t, 'n1', { restartOf: n1, env: POWER_LOSS });
  t.match(await worker.request({ op: 'connect', uri: restarted.nbdUri('pcu') }, OP_TIMEOUT_MS), { ok: true }, 'reconnected to n1');
  const read = await worker.request({ op: 'read-range', first: 0, count: BLOCKS * 17 }, OP_TIMEOUT_MS);
  t.ok(read.ok && read.blocks !== undefined, 'read everything back');
  const wrong: string[] = [];
  (read.blocks ?? []).forEach((value, block) => {
    const violation = model.check(block, typeof value === 'number' ? { kind: 'version', version: value } : { kind: 'garbage', detail: value }, 'after restart');
    if (violation !== undefined) wrong.push(`${block}: read ${violation.read}, acknowledged ${violation.allowed.join('|')}`);
  });
  t.same(wrong, [], `every acknowledged write reads back after the owner's power cut (${wrong.length} of ${BLOCKS} do not)`, { todo: STALE_UNCLEAN_FLAG });
});
