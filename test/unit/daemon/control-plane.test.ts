import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { pino } from 'pino';
import t from 'tap';
import type { ExportHandle } from '../../../blockdev/export-provider.js';
import { LocalControlPlane } from '../../../daemon/control/local-control-plane.js';
import { ReadinessTracker } from '../../../daemon/control/readiness-tracker.js';
import { VolumeExports } from '../../../daemon/control/volume-exports.js';
import { LocalCommandLog } from '../../../daemon/state/local-command-log.js';
import { MemoryPool } from '../../helpers/memory-pool.js';

const logger = pino({ level: 'silent' });
const MiB = 1024 ** 2;
const ADDRESSES = { api: '127.0.0.1:9700', peer: '127.0.0.1:9701', nbd: '127.0.0.1:10809', iscsi: '127.0.0.1:3260' };
const client = { protocol: 'nbd', connectionId: 'c1', remoteAddress: '127.0.0.1:5000' } as const;

interface Rig {
  readonly control: LocalControlPlane;
  readonly exports: VolumeExports;
  readonly pool: MemoryPool;
  readonly log: LocalCommandLog;
  readonly readiness: ReadinessTracker;
  /** Handles the fake protocol server holds, per export name. */
  readonly handles: Map<string, Set<ExportHandle>>;
  disconnects: string[];
  /** When false, the fake server ignores disconnect requests (a stuck client). */
  disconnectWorks: boolean;
  open(name: string): Promise<ExportHandle>;
}

async function rig(t: { teardown(fn: () => unknown): void }, extraNodes: string[] = []): Promise<Rig> {
  const dir = await mkdtemp(join(tmpdir(), 'plinth-cp-'));
  const db = new Level<string, unknown>(join(dir, 'db'), { valueEncoding: 'json' });
  await db.open();
  t.teardown(async () => {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  });
  const log = await LocalCommandLog.open({}, { storage: db.sublevel<string, unknown>('state', { valueEncoding: 'json' }), logger });
  await log.propose({ type: 'cluster.init', clusterId: 'cluster-1' });
  for (const id of ['n1', ...extraNodes]) await log.propose({ type: 'node.join', nodeId: id, addresses: ADDRESSES, joinedAt: '2026-01-01T00:00:00.000Z' });
  const pool = new MemoryPool({ capacityBytes: 64 * MiB });
  const readiness = new ReadinessTracker();
  const handles = new Map<string, Set<ExportHandle>>();
  const state: Rig = {
    handles,
    pool,
    log,
    readiness,
    disconnects: [],
    disconnectWorks: true,
    control: undefined as unknown as LocalControlPlane,
    exports: undefined as unknown as VolumeExports,
    open: async (name) => {
      const handle = await exports.openExport(name, client);
      const set = handles.get(name) ?? new Set();
      set.add(handle);
      handles.set(name, set);
      return handle;
    },
  };
  const exports = new VolumeExports(
    { nodeId: 'n1', maxConnectionsPerVolume: 3, disconnectTimeoutMs: 200 },
    {
      commands: log,
      pool,
      logger,
      disconnectClients: (name) => {
        state.disconnects.push(name);
        if (!state.disconnectWorks) return;
        // Like the NBD server: close the sockets, and each connection releases its handle.
        for (const handle of handles.get(name) ?? []) queueMicrotask(() => handle.release());
        handles.delete(name);
      },
    },
  );
  let ids = 0;
  const control = new LocalControlPlane(
    { nodeId: 'n1', version: '9.9.9' },
    { commands: log, pool, exports, readiness, logger, clock: () => new Date('2026-02-03T04:05:06.000Z'), newId: () => `vol-${++ids}` },
  );
  return Object.assign(state, { control, exports });
}

t.test('create, get, list', async (t) => {
  const { control } = await rig(t);
  const view = await control.createVolume({ name: 'db1', sizeBytes: 16 * MiB });
  t.same(view, {
    id: 'vol-1',
    name: 'db1',
    sizeBytes: 16 * MiB,
    replicaCount: 1,
    createdAt: '2026-02-03T04:05:06.000Z',
    attachedTo: null,
    generation: 0,
    state: 'healthy',
    allocatedBytes: 0,
    replicas: [{ nodeId: 'n1', state: 'in-sync', dataGeneration: 0 }],
    connections: 0,
    graceMs: 600_000,
    chap: null,
  });
  await control.createVolume({ name: 'a-first', sizeBytes: MiB });
  t.same((await control.listVolumes()).map((volume) => volume.name), ['a-first', 'db1']);
  t.same(await control.getVolume('db1'), view);
  await t.rejects(control.getVolume('nope'), { code: 'VOLUME_NOT_FOUND' });
  await t.rejects(control.createVolume({ name: 'db1', sizeBytes: MiB }), { code: 'VOLUME_EXISTS' });
  await t.rejects(control.createVolume({ name: 'Bad', sizeBytes: MiB }), { code: 'INVALID_NAME' });
  await t.rejects(control.createVolume({ name: 'odd', sizeBytes: 1000 }), { code: 'INVALID_SIZE' });
  await t.rejects(control.createVolume({ name: 'r3', sizeBytes: MiB, replicaCount: 3 }), {
    code: 'INVALID_ARGUMENT',
    message: '3 replicas need 3 nodes; the cluster has 1',
  });
});

t.test('thin provisioning: volumes may add up to more than the pool', async (t) => {
  const { control, pool } = await rig(t);
  await control.createVolume({ name: 'big', sizeBytes: 10 * pool.capacityBytes });
  t.equal((await control.getVolume('big')).sizeBytes, 10 * pool.capacityBytes);
});

t.test('cluster and nodes', async (t) => {
  const { control } = await rig(t, ['n0']);
  await control.createVolume({ name: 'v', sizeBytes: MiB });
  t.same(await control.cluster(), {
    clusterId: 'cluster-1',
    leaderId: 'n1',
    nodeCount: 2,
    volumeCount: 1,
    capacityBytes: 64 * MiB,
    usedBytes: 0,
    version: '9.9.9',
  });
  const nodes = await control.nodes();
  t.same(nodes.map((node) => [node.id, node.state, node.leader, node.disks.length]), [
    ['n0', 'up', false, 0], // liveness is the committed state (node.down comes from the leader)
    ['n1', 'up', true, 1],
  ]);
  t.same(nodes[1]?.addresses, ADDRESSES);
});

t.test('opening an export attaches the volume here and shares one store', async (t) => {
  const r = await rig(t);
  await r.control.createVolume({ name: 'v', sizeBytes: 4 * MiB });
  const [a, b] = await Promise.all([r.open('v'), r.open('v')]);
  t.equal(a.device, b.device, 'one store per volume');
  t.match(a.description, { name: 'v', description: 'Plinth volume v (4MiB)', sizeBytes: 4 * MiB, readOnly: false, capabilities: { trim: true, multiConn: true } });
  const view = await r.control.getVolume('v');
  t.equal(view.attachedTo, 'n1');
  t.equal(view.generation, 1, 'one attach, one generation, however many connections');
  t.equal(view.connections, 2);
  await a.device.write(0, Buffer.alloc(4096, 7));
  t.equal((await r.control.getVolume('v')).allocatedBytes, 64 * 1024);
  a.release();
  a.release();
  t.equal(r.exports.connectionCount(view.id), 1, 'a second release is ignored');
  await r.open('v');
  await r.open('v');
  await t.rejects(r.open('v'), { code: 'BUSY' }, 'the per-volume connection limit');
  t.equal(r.log.state.volumes['v']?.generation, 1);
});

t.test('unknown exports and snapshots', async (t) => {
  const r = await rig(t);
  await t.rejects(r.exports.openExport('nope', client), { code: 'VOLUME_NOT_FOUND' });
  await t.rejects(r.exports.describeExport('nope'), { code: 'VOLUME_NOT_FOUND' });
  await t.rejects(r.exports.openExport('v@snap', client), { code: 'VOLUME_NOT_FOUND' }, 'volume@snapshot of an unknown volume');
  await r.control.createVolume({ name: 'b', sizeBytes: MiB });
  await r.control.createVolume({ name: 'a', sizeBytes: MiB });
  t.same((await r.exports.listExports()).map((item) => item.name), ['a', 'b']);
});

t.test('a volume attached to another node is refused', async (t) => {
  const r = await rig(t, ['n2']);
  await r.control.createVolume({ name: 'v', sizeBytes: MiB });
  await r.control.attachVolume('v', 'n2');
  await t.rejects(r.open('v'), { code: 'VOLUME_ATTACHED' });
  await t.rejects(r.control.attachVolume('v', 'n1'), { code: 'VOLUME_ATTACHED' });
  const taken = await r.control.attachVolume('v', 'n1', { force: true });
  t.equal(taken.attachedTo, 'n1');
  t.equal(taken.generation, 2);
  await t.rejects(r.control.attachVolume('v', 'ghost'), { code: 'NODE_NOT_FOUND' });
});

t.test('handing a volume over to another node releases the local store first', async (t) => {
  const r = await rig(t, ['n2']);
  await r.control.createVolume({ name: 'v', sizeBytes: MiB });
  const handle = await r.open('v');
  await t.rejects(r.control.attachVolume('v', 'n2'), { code: 'VOLUME_ATTACHED' });
  const moved = await r.control.attachVolume('v', 'n2', { force: true });
  t.equal(moved.attachedTo, 'n2');
  t.equal(moved.generation, 2);
  t.same(r.disconnects, ['v']);
  await t.rejects(handle.device.write(0, Buffer.alloc(512)), { code: 'SHUTTING_DOWN' }, 'the old store is closed');
});

t.test('detach refuses connected clients unless forced', async (t) => {
  const r = await rig(t);
  await r.control.createVolume({ name: 'v', sizeBytes: MiB });
  const handle = await r.open('v');
  await handle.device.write(512, Buffer.alloc(512, 9));
  await t.rejects(r.control.detachVolume('v'), { code: 'VOLUME_ATTACHED', message: /1 connected client/ });
  t.equal((await r.control.getVolume('v')).attachedTo, 'n1');
  const detached = await r.control.detachVolume('v', { force: true });
  t.same(r.disconnects, ['v']);
  t.equal(detached.attachedTo, null);
  t.equal(detached.connections, 0);
  t.equal(r.pool.openStores.size, 0, 'the store is closed');
  // Reconnecting attaches again with a higher generation and sees the data.
  const again = await r.open('v');
  const data = Buffer.alloc(512);
  await again.device.read(512, data);
  t.equal(data[0], 9);
  t.equal((await r.control.getVolume('v')).generation, 2);
});

t.test('detach without clients, twice', async (t) => {
  const r = await rig(t);
  await r.control.createVolume({ name: 'v', sizeBytes: MiB });
  (await r.open('v')).release();
  t.equal((await r.control.detachVolume('v')).attachedTo, null);
  t.equal(r.pool.openStores.size, 0);
  t.equal((await r.control.detachVolume('v')).attachedTo, null);
  await t.rejects(r.control.detachVolume('nope'), { code: 'VOLUME_NOT_FOUND' });
});

t.test('a forced detach gives up when clients do not go', async (t) => {
  const r = await rig(t);
  await r.control.createVolume({ name: 'v', sizeBytes: MiB });
  await r.open('v');
  r.disconnectWorks = false;
  await t.rejects(r.control.detachVolume('v', { force: true }), { code: 'TIMEOUT' });
  t.equal((await r.control.getVolume('v')).attachedTo, 'n1', 'still attached');
});

t.test('delete: refused while attached, frees the space after', async (t) => {
  const r = await rig(t);
  const view = await r.control.createVolume({ name: 'v', sizeBytes: MiB });
  const handle = await r.open('v');
  await handle.device.write(0, Buffer.alloc(4096, 1));
  await t.rejects(r.control.deleteVolume('v'), { code: 'VOLUME_ATTACHED' });
  t.equal(r.pool.openStores.size, 1, 'a refused delete leaves the store alone');
  handle.release();
  await r.control.detachVolume('v');
  await r.control.deleteVolume('v');
  t.notOk(r.pool.volumes.has(view.id), 'the pool freed the volume');
  await t.rejects(r.control.getVolume('v'), { code: 'VOLUME_NOT_FOUND' });
  await t.rejects(r.control.deleteVolume('v'), { code: 'VOLUME_NOT_FOUND' });
  const reborn = await r.control.createVolume({ name: 'v', sizeBytes: MiB });
  t.not(reborn.id, view.id, 'a new volume of the same name is a new volume');
  const data = Buffer.alloc(4096, 5);
  await (await r.open('v')).device.read(0, data);
  t.ok(data.every((byte) => byte === 0), 'and reads as zeroes');
});

t.test('resize grows the pool volume too', async (t) => {
  const r = await rig(t);
  const view = await r.control.createVolume({ name: 'v', sizeBytes: MiB });
  const handle = await r.open('v');
  const grown = await r.control.resizeVolume('v', 2 * MiB);
  t.equal(grown.sizeBytes, 2 * MiB);
  t.equal(handle.device.sizeBytes, 2 * MiB);
  t.equal(r.pool.volumes.get(view.id)?.sizeBytes, 2 * MiB);
  await t.rejects(r.control.resizeVolume('v', MiB), { code: 'INVALID_SIZE' });
  await t.rejects(r.control.resizeVolume('nope', MiB), { code: 'VOLUME_NOT_FOUND' });
});

t.test('closeAll flushes and closes stores and refuses new connections', async (t) => {
  const r = await rig(t);
  await r.control.createVolume({ name: 'v', sizeBytes: MiB });
  const handle = await r.open('v');
  handle.release();
  await r.exports.closeAll();
  t.equal(r.pool.openStores.size, 0);
  await t.rejects(r.open('v'), { code: 'SHUTTING_DOWN' });
});

t.test('readiness reports what is missing', async (t) => {
  const r = await rig(t);
  r.readiness.expect('nbd', 'not listening yet');
  r.readiness.expect('api', 'not listening yet');
  t.same(r.control.readiness(), { ready: false, reasons: ['nbd: not listening yet', 'api: not listening yet'] });
  r.readiness.markReady('nbd');
  r.readiness.markReady('api');
  t.same(r.control.readiness(), { ready: true, reasons: [] });
  r.readiness.markStopping('shutting down');
  t.same(r.control.readiness(), { ready: false, reasons: ['shutting down'] });
});

t.test('resizing a volume the pool has not seen yet is fine: it opens at the new size', async (t) => {
  const r = await rig(t);
  await r.control.createVolume({ name: 'v', sizeBytes: MiB });
  await r.control.resizeVolume('v', 3 * MiB);
  t.equal((await r.open('v')).device.sizeBytes, 3 * MiB);
});

t.test('placement and node removal through the control plane', async (t) => {
  const r = await rig(t, ['n2', 'n3']);
  await r.log.propose({ type: 'node.down', nodeId: 'n3', at: '2026-02-03T04:05:06.000Z' });
  const view = await r.control.createVolume({ name: 'v', sizeBytes: MiB });
  t.same(view.replicas.map((replica) => replica.nodeId), ['n1', 'n2'], 'default count and placement use the up nodes, local first');
  await t.rejects(r.control.createVolume({ name: 'w', sizeBytes: MiB, replicaCount: 3 }), {
    code: 'INVALID_ARGUMENT',
    message: /3 replicas need 3 distinct up nodes; only 2 of 3 qualify/,
  });
  const solo = await r.control.createVolume({ name: 'solo', sizeBytes: MiB, replicaCount: 1 });
  t.same(solo.replicas.map((replica) => replica.nodeId), ['n1']);
  await t.rejects(r.control.removeNode('n1'), { code: 'LAST_IN_SYNC_REPLICA' });
  await r.control.removeNode('n2');
  t.same((await r.control.nodes()).map((node) => `${node.id}:${node.state}`), ['n1:up', 'n3:down']);
  t.same((await r.control.getVolume('v')).replicas, [{ nodeId: 'n1', state: 'in-sync', dataGeneration: 0 }]);
  t.equal((await r.control.getVolume('v')).state, 'degraded', 'one of two wanted replicas is left');
  await t.rejects(r.control.removeNode('ghost'), { code: 'NODE_NOT_FOUND' });
});

t.test('per-volume iSCSI CHAP: set, shown without secrets, cleared, refused with the rule', async (t) => {
  const { control, log } = await rig(t);
  await control.createVolume({ name: 'db1', sizeBytes: MiB });
  const set = await control.setVolumeChap('db1', { user: 'alice', secret: 'initiator-secret-1', targetUser: 'plinth', targetSecret: 'target-secret-22' });
  t.same(set.chap, { user: 'alice', mutual: true });
  t.notOk(JSON.stringify(await control.listVolumes()).includes('secret-'), 'no secret in any view');
  t.same(log.state.volumes['db1']?.chap, { user: 'alice', secret: 'initiator-secret-1', targetUser: 'plinth', targetSecret: 'target-secret-22' }, 'committed');
  t.same((await control.clearVolumeChap('db1')).chap, null);
  t.equal(log.state.volumes['db1']?.chap, undefined);
  await t.rejects(control.setVolumeChap('db1', { user: 'alice', secret: 'too-short' }), { code: 'INVALID_ARGUMENT', message: /12 to 255 bytes/ });
  await t.rejects(control.setVolumeChap('nope', { user: 'alice', secret: 'initiator-secret-1' }), { code: 'VOLUME_NOT_FOUND' });
  await t.rejects(control.clearVolumeChap('nope'), { code: 'VOLUME_NOT_FOUND' });
});
