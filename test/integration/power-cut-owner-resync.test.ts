/**
 * A finding of the chaos soak (issue 7; `npm run soak -- --minutes 10 --seed
 * 101 --faults kill,stop,failpoint,power-cut,disk`), reduced to one
 * scenario and kept as its regression test. The owner n1 runs over the
 * power-loss disk layer; its client's writes are acknowledged (so on every
 * in-sync replica: invariant 1) but not flushed. A FLUSH reaches n1's
 * `disk.sync`, where the power is cut: n1 loses un-synced writes, the other
 * replicas keep them. n1 restarts and its client reconnects to it (the
 * volume is still attached there). The new session used to pick its local
 * replica as the failover source and copy it over the in-flight regions of
 * the others, losing those writes everywhere. Now a node whose previous run
 * ended uncleanly (daemon/lifecycle/run-marker.ts) is the source only as a
 * last resort (failover-resync.ts sourceOrder).
 */
import t from 'tap';
import { startFailpointMember } from './fixtures/failpoint-cluster.js';
import { NbdWorker } from '../soak/nbd-worker.js';
import { BlockModel } from '../soak/soak-model.js';

const BLOCKS = 64;
const OP_TIMEOUT_MS = 20_000;
/** Keep n1 "up" in the cluster's view across its restart, as in the soak (the restart beat the down detector). */
const ENV = { PLINTH_NODE_DOWN_AFTER_MS: '30000' };

t.test('acknowledged writes survive a power cut of the owner that restarts and re-attaches', async (t) => {
  const n1 = await startFailpointMember(t, 'n1', { env: { ...ENV, PLINTH_TEST_DISK: 'power-loss:seed=7' }, dataDirPrefix: 'plinth-soak-find-' });
  const n2 = await startFailpointMember(t, 'n2', { join: n1, env: ENV, dataDirPrefix: 'plinth-soak-find-' });
  await startFailpointMember(t, 'n3', { join: n2, env: ENV, dataDirPrefix: 'plinth-soak-find-' });
  const created = await n1.api('POST', '/v1/volumes', { name: 'pc', size: '16MiB', replicas: 3 });
  t.equal(created.status, 201, `create: ${JSON.stringify(created.body)}`);

  const worker = new NbdWorker();
  t.teardown(() => worker.close());
  const model = new BlockModel('pc', 4096);
  t.match(await worker.request({ op: 'connect', uri: n1.nbdUri('pc') }, OP_TIMEOUT_MS), { ok: true }, 'connected to n1 (the owner)');
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
  t.match(n1.stderr(), /power-loss disk .*: \d+ writes landed, \d+ torn, \d+ lost/, 'n1 reports what the cut lost');

  const restarted = await startFailpointMember(t, 'n1', { restartOf: n1, env: { ...ENV, PLINTH_TEST_DISK: 'power-loss:seed=7' } });
  t.match(await worker.request({ op: 'connect', uri: restarted.nbdUri('pc') }, OP_TIMEOUT_MS), { ok: true }, 'reconnected to n1');
  const read = await worker.request({ op: 'read-range', first: 0, count: BLOCKS * 17 }, OP_TIMEOUT_MS);
  t.ok(read.ok && read.blocks !== undefined, 'read everything back');
  const wrong: string[] = [];
  (read.blocks ?? []).forEach((value, block) => {
    const violation = model.check(block, typeof value === 'number' ? { kind: 'version', version: value } : { kind: 'garbage', detail: value }, 'after restart');
    if (violation !== undefined) wrong.push(`${block}: read ${violation.read}, acknowledged ${violation.allowed.join('|')}`);
  });
  t.same(wrong, [], 'every acknowledged write reads back after the owner\'s power cut');
});
