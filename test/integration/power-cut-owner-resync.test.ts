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
import { OP_TIMEOUT_MS, POWER_LOSS_ENV, powerCutOwnerLosesNothing, SLOW_DOWN_DETECTOR_ENV as ENV } from './fixtures/power-cut-owner.js';
import { NbdWorker } from '../soak/nbd-worker.js';
import { BlockModel } from '../soak/soak-model.js';

t.test('acknowledged writes survive a power cut of the owner that restarts and re-attaches', async (t) => {
  const n1 = await startFailpointMember(t, 'n1', { env: POWER_LOSS_ENV, dataDirPrefix: 'plinth-soak-find-' });
  const n2 = await startFailpointMember(t, 'n2', { join: n1, env: ENV, dataDirPrefix: 'plinth-soak-find-' });
  await startFailpointMember(t, 'n3', { join: n2, env: ENV, dataDirPrefix: 'plinth-soak-find-' });
  const created = await n1.api('POST', '/v1/volumes', { name: 'pc', size: '16MiB', replicas: 3 });
  t.equal(created.status, 201, `create: ${JSON.stringify(created.body)}`);

  const worker = new NbdWorker();
  t.teardown(() => worker.close());
  const model = new BlockModel('pc', 4096);
  t.match(await worker.request({ op: 'connect', uri: n1.nbdUri('pc') }, OP_TIMEOUT_MS), { ok: true }, 'connected to n1 (the owner)');
  t.match(await worker.request({ op: 'flush' }, OP_TIMEOUT_MS), { ok: true }, 'allocation and metadata made durable first');
  await powerCutOwnerLosesNothing(t, n1, worker, model, 'pc');
});
