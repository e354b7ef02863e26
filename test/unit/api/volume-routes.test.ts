import t from 'tap';
import { PlinthError } from '../../../common/plinth-error.js';
import type { VolumeView } from '../../../daemon/control-plane.js';
import { AUTH_HEADERS, buildTestApp, errorOf } from './api-fixture.js';

const GIB = 1024 ** 3;

function volumeOf(body: unknown): VolumeView {
  if (typeof body !== 'object' || body === null || !('name' in body) || !('sizeBytes' in body)) {
    throw new Error(`not a volume: ${JSON.stringify(body)}`);
  }
  return body as VolumeView;
}

t.test('every /v1 route answers its happy path', async (t) => {
  const { app } = await buildTestApp();
  t.teardown(() => app.close());
  const call = async (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: object) =>
    app.inject({ method, url, headers: AUTH_HEADERS, ...(payload === undefined ? {} : { payload }) });

  const created = await call('POST', '/v1/volumes', { name: 'db1', size: '10GiB', replicas: 2 });
  t.equal(created.statusCode, 201);
  t.match(volumeOf(created.json()), { name: 'db1', sizeBytes: 10 * GIB, replicaCount: 2, attachedTo: null });

  t.equal(volumeOf(created.json()).graceMs, 600_000, 'the default replica grace is 10 minutes');
  const graced = await call('POST', '/v1/volumes', { name: 'short-grace', size: '1GiB', grace: '90s' });
  t.equal(graced.statusCode, 201);
  t.equal(volumeOf(graced.json()).graceMs, 90_000, 'grace as a duration string');
  const badGrace = await call('POST', '/v1/volumes', { name: 'bad-grace', size: '1GiB', grace: '10 minutes' });
  t.equal(badGrace.statusCode, 400, 'a malformed grace is refused');
  t.match(errorOf(badGrace), { code: 'INVALID_ARGUMENT' });
  t.equal((await call('DELETE', '/v1/volumes/short-grace')).statusCode, 204);

  const bytes = await call('POST', '/v1/volumes', { name: 'web-cache-2', size: 1048576 });
  t.equal(bytes.statusCode, 201, 'integer byte sizes are accepted');
  t.equal(volumeOf(bytes.json()).sizeBytes, 1048576);

  const list = await call('GET', '/v1/volumes');
  t.equal(list.statusCode, 200);
  t.same(list.json<{ volumes: VolumeView[] }>().volumes.map((v) => v.name), ['db1', 'web-cache-2']);

  const one = await call('GET', '/v1/volumes/db1');
  t.equal(one.statusCode, 200);
  t.equal(volumeOf(one.json()).id, volumeOf(created.json()).id);

  const grown = await call('PATCH', '/v1/volumes/db1', { size: '20GiB' });
  t.equal(grown.statusCode, 200);
  t.equal(volumeOf(grown.json()).sizeBytes, 20 * GIB);

  const attached = await call('POST', '/v1/volumes/db1/attach', { node: 'node-2' });
  t.equal(attached.statusCode, 200);
  t.match(volumeOf(attached.json()), { attachedTo: 'node-2', generation: 1 });

  const forced = await call('POST', '/v1/volumes/db1/attach', { node: 'node-3', force: true });
  t.match(volumeOf(forced.json()), { attachedTo: 'node-3', generation: 2 });

  const detached = await call('POST', '/v1/volumes/db1/detach', { force: false });
  t.equal(detached.statusCode, 200);
  t.equal(volumeOf(detached.json()).attachedTo, null);

  const deleted = await call('DELETE', '/v1/volumes/db1');
  t.equal(deleted.statusCode, 204);
  t.equal(deleted.body, '');
  t.equal((await call('GET', '/v1/volumes/db1')).statusCode, 404);

  const cluster = await call('GET', '/v1/cluster');
  t.equal(cluster.statusCode, 200);
  t.match(cluster.json(), { clusterId: 'cluster-test', leaderId: 'node-1', nodeCount: 3, volumeCount: 1 });

  const nodes = await call('GET', '/v1/nodes');
  t.equal(nodes.statusCode, 200);
  t.equal(nodes.json<{ nodes: unknown[] }>().nodes.length, 3);
  t.match(nodes.json(), { nodes: [{ id: 'node-1', leader: true, disks: [{ kind: 'file' }] }] });
});

t.test('detach accepts a request without any body', async (t) => {
  const { app, control } = await buildTestApp();
  t.teardown(() => app.close());
  await control.createVolume({ name: 'db1', sizeBytes: GIB });
  await control.attachVolume('db1', 'node-1');
  const response = await app.inject({ method: 'POST', url: '/v1/volumes/db1/detach', headers: AUTH_HEADERS });
  t.equal(response.statusCode, 200);
  t.equal(volumeOf(response.json()).attachedTo, null);
});

t.test('control-plane errors map to their HTTP status', async (t) => {
  const { app, control } = await buildTestApp({ control: { capacityBytes: 10 * GIB } });
  t.teardown(() => app.close());
  const post = (url: string, payload: object) => app.inject({ method: 'POST', url, headers: AUTH_HEADERS, payload });

  const missing = await app.inject({ url: '/v1/volumes/ghost', headers: AUTH_HEADERS });
  t.equal(missing.statusCode, 404);
  t.same(errorOf(missing), { code: 'VOLUME_NOT_FOUND', message: 'volume "ghost" not found', details: { name: 'ghost' } });

  t.equal((await post('/v1/volumes', { name: 'a', size: '1GiB' })).statusCode, 201);
  const exists = await post('/v1/volumes', { name: 'a', size: '1GiB' });
  t.equal(exists.statusCode, 409);
  t.equal(errorOf(exists).code, 'VOLUME_EXISTS');

  const noSpace = await post('/v1/volumes', { name: 'big', size: '1TiB' });
  t.equal(noSpace.statusCode, 507);
  t.equal(errorOf(noSpace).code, 'NO_SPACE');

  await control.attachVolume('a', 'node-1');
  const attached = await app.inject({ method: 'DELETE', url: '/v1/volumes/a', headers: AUTH_HEADERS });
  t.equal(attached.statusCode, 409);
  t.equal(errorOf(attached).code, 'VOLUME_ATTACHED');

  control.setConnections('a', 2);
  const busy = await post('/v1/volumes/a/detach', {});
  t.equal(busy.statusCode, 409, 'detach refused while clients are connected');
  t.equal((await post('/v1/volumes/a/detach', { force: true })).statusCode, 200);

  const shrink = await app.inject({ method: 'PATCH', url: '/v1/volumes/a', headers: AUTH_HEADERS, payload: { size: '1MiB' } });
  t.equal(shrink.statusCode, 400);
  t.equal(errorOf(shrink).code, 'INVALID_SIZE');
});

t.test('transient and internal failures: 503, 504 and a logged 500 without internals', async (t) => {
  const { app, control } = await buildTestApp();
  t.teardown(() => app.close());
  const get = () => app.inject({ url: '/v1/volumes', headers: AUTH_HEADERS });

  control.failNext = new PlinthError('NOT_LEADER', 'not the leader; ask node-2', { leaderId: 'node-2' });
  const notLeader = await get();
  t.equal(notLeader.statusCode, 503);
  t.same(errorOf(notLeader), { code: 'NOT_LEADER', message: 'not the leader; ask node-2', details: { leaderId: 'node-2' } });

  control.failNext = new PlinthError('SHUTTING_DOWN', 'plinthd is shutting down');
  t.equal((await get()).statusCode, 503);

  control.failNext = new PlinthError('TIMEOUT', 'raft commit timed out');
  t.equal((await get()).statusCode, 504);

  control.failNext = new Error('secret internal detail /var/lib/plinth');
  const internal = await get();
  t.equal(internal.statusCode, 500);
  const body = errorOf(internal);
  t.equal(body.code, 'INTERNAL');
  t.notMatch(body.message, /secret/, 'internal messages are not leaked');
  t.equal(body.details?.['requestId'], internal.headers['x-request-id']);

  control.failNext = new PlinthError('DISK_CORRUPT', 'superblock checksum mismatch');
  t.equal((await get()).statusCode, 500, 'codes without a mapping are server faults');

  t.equal((await get()).statusCode, 200, 'the app keeps serving after every failure');
});

t.test('probes: healthz, readyz and metrics need no token', async (t) => {
  const { app, control } = await buildTestApp();
  t.teardown(() => app.close());

  const health = await app.inject({ url: '/healthz' });
  t.equal(health.statusCode, 200);
  t.same(health.json(), { status: 'ok' });

  const ready = await app.inject({ url: '/readyz' });
  t.equal(ready.statusCode, 200);
  t.same(ready.json(), { ready: true, reasons: [] });

  control.readinessState = { ready: false, reasons: ['raft: no leader', 'pool: disk missing'] };
  const notReady = await app.inject({ url: '/readyz' });
  t.equal(notReady.statusCode, 503);
  t.same(notReady.json(), { ready: false, reasons: ['raft: no leader', 'pool: disk missing'] });

  const metrics = await app.inject({ url: '/metrics' });
  t.equal(metrics.statusCode, 200);
  t.match(metrics.headers['content-type'], /^text\/plain; version=0\.0\.4/);
  t.match(metrics.body, /^plinth_test_requests_total 3$/m);
});
