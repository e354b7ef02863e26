import t from 'tap';
import { RebuildReconciler } from '../../../daemon/reconciler/rebuild-reconciler.js';
import { RemoteReplica } from '../../../blockdev/replica/remote-replica.js';
import { pattern, SECRET, silentLogger } from '../replica/replica-fixture.js';
import { REGION_BYTES, SESSION_VOLUME_BYTES, startSessionCluster, type SessionCluster } from './session-fixture.js';

/** VolumeSession over three real replica servers on loopback, with an in-memory cluster state. */

const KiB = 1024;

async function readReplica(env: SessionCluster, nodeId: string, offset: number, lengthBytes: number): Promise<Buffer> {
  const node = env.nodes.get(nodeId);
  if (node === undefined) throw new Error(`no node ${nodeId}`);
  const store = await node.pool.openVolume(env.cluster.placement.volumeId, SESSION_VOLUME_BYTES);
  const target = Buffer.alloc(lengthBytes);
  await store.read(offset, target);
  return target;
}

/** The old owner's own link to one replica, as it stood when it died (generation `generation`). */
async function oldOwnerLink(env: SessionCluster, nodeId: string, generation: number): Promise<RemoteReplica> {
  const port = env.cluster.peers.get(nodeId)?.port ?? 0;
  const link = new RemoteReplica(
    { host: '127.0.0.1', port, nodeId: 'n1', secret: SECRET, volumeId: env.cluster.placement.volumeId, sizeBytes: SESSION_VOLUME_BYTES, generation, requestTimeoutMs: 2000 },
    { logger: silentLogger },
  );
  await link.connect();
  return link;
}

t.test('attach commits a new generation; a live owner is refused, a down one is taken over and fenced', async (t) => {
  const env = await startSessionCluster(t);
  const first = await env.open('n1');
  t.equal(first.generation, 1);
  await first.device.write(0, pattern(8 * KiB, 1), { fua: true });
  await t.rejects(env.open('n2'), { code: 'VOLUME_ATTACHED', details: { attachedTo: 'n1' } }, 'refused while n1 is up');

  env.cluster.up.set('n1', false); // missed heartbeats: n1 is frozen, not dead
  const second = await env.open('n2');
  t.equal(second.generation, 2, 'the takeover committed a higher generation');
  await second.device.write(0, pattern(8 * KiB, 2), { fua: true });
  // n1 wakes up and sends the write it had queued: every replica refuses it, its own local one too.
  await t.rejects(first.device.write(0, pattern(8 * KiB, 3)), { code: 'FENCED' });
  t.ok(first.stopped, 'the old session stopped serving');
  for (const nodeId of ['n1', 'n2', 'n3']) {
    t.ok((await readReplica(env, nodeId, 0, 8 * KiB)).equals(pattern(8 * KiB, 2)), `the old owner's write did not land on ${nodeId}`);
  }
  const back = Buffer.alloc(8 * KiB);
  await second.device.read(0, back);
  t.ok(back.equals(pattern(8 * KiB, 2)));
});

t.test('failover makes the in-sync replicas identical to one source over the in-flight regions', async (t) => {
  const env = await startSessionCluster(t);
  const first = await env.open('n1');
  await first.device.write(0, pattern(1024 * KiB, 7));
  // Two flushes clear the activity logs (region-tracker.ts): these bytes are settled everywhere.
  await first.device.flush();
  await first.device.flush();
  // Writes in flight when n1 died: each reached one replica only and was never flushed.
  const toN2 = await oldOwnerLink(env, 'n2', 1);
  const toN3 = await oldOwnerLink(env, 'n3', 1);
  t.teardown(() => {
    toN2.close();
    toN3.close();
  });
  await toN2.write(64 * KiB, pattern(16 * KiB, 8));
  await toN3.write(256 * KiB, pattern(16 * KiB, 9));
  await first.close();
  env.cluster.up.set('n1', false);

  const second = await env.open('n2');
  t.equal(second.resync.sourceId, 'n2', 'the local in-sync replica is the source');
  t.same(second.resync.regions, [
    { offset: 64 * KiB, lengthBytes: REGION_BYTES },
    { offset: 256 * KiB, lengthBytes: REGION_BYTES },
  ], 'the union of every replica activity log, and nothing else');
  t.same(second.resync.failed, []);
  const expected = pattern(1024 * KiB, 7);
  pattern(16 * KiB, 8).copy(expected, 64 * KiB); // the source had it
  for (const nodeId of ['n1', 'n2', 'n3']) {
    t.ok((await readReplica(env, nodeId, 0, 1024 * KiB)).equals(expected), `${nodeId} is identical to the source`);
  }
  await t.rejects(toN3.write(0, Buffer.alloc(10)), { code: 'FENCED' }, 'the old generation is fenced on every replica');
});

t.test('a lost replica is committed faulted before the write is acknowledged, then caught up by delta', async (t) => {
  const env = await startSessionCluster(t);
  const session = await env.open('n1');
  await session.device.write(0, pattern(512 * KiB, 1));
  await env.crash('n3');
  await session.device.write(2048 * KiB, pattern(32 * KiB, 2), { fua: true });
  t.equal(env.cluster.stateOf('n3'), 'faulted', 'the fault was committed before the ack');
  t.ok(env.cluster.committed.includes('faulted n3 g1'));
  t.same(session.replicaStatuses().map((status) => status.state), ['in-sync', 'in-sync', 'faulted']);

  await env.restart(t, 'n3');
  const reconciler = new RebuildReconciler({}, { sessions: () => [session], cluster: env.cluster, logger: silentLogger });
  const deadline = Date.now() + 15_000;
  while (env.cluster.stateOf('n3') !== 'in-sync' && Date.now() < deadline) {
    await reconciler.tick();
    await reconciler.settled();
    if (env.cluster.stateOf('n3') !== 'in-sync') await new Promise((resolve) => setTimeout(resolve, 200));
  }
  t.equal(env.cluster.stateOf('n3'), 'in-sync', 'committed back in-sync');
  t.ok(env.cluster.committed.includes('rebuilding n3 g1'));
  const [view] = reconciler.views('db').filter((entry) => entry.nodeId === 'n3');
  // Delta: the missed 32 KiB plus the regions n3 itself had unflushed when it crashed (512 KiB), not 16 MiB.
  t.equal(view?.progress?.totalBytes, 32 * KiB + 512 * KiB, 'delta: only the missed and the unflushed regions were copied');
  t.ok((await readReplica(env, 'n3', 2048 * KiB, 32 * KiB)).equals(pattern(32 * KiB, 2)), 'the missed write is on n3 now');
  t.ok((await readReplica(env, 'n3', 0, 512 * KiB)).equals(pattern(512 * KiB, 1)));
});

t.test('a fault that cannot be committed is never acknowledged', async (t) => {
  const env = await startSessionCluster(t);
  const session = await env.open('n1');
  await env.crash('n2');
  env.cluster.refuseCommands = true;
  await t.rejects(session.device.write(0, pattern(4 * KiB, 1)), { code: 'IO_ERROR' });
  t.equal(env.cluster.stateOf('n2'), 'in-sync', 'nothing committed');
  t.ok(session.stopped, 'the volume is suspended');
});
