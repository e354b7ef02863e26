import { createServer, type Socket } from 'node:net';
import t from 'tap';
import { PlinthApiError, PlinthClient, PlinthConnectionError } from '../../../api/client/plinth-client.js';
import { closedLoopbackPort, listenTestApp, TEST_TOKEN } from './api-fixture.js';

const GIB = 1024 ** 3;

t.test('every client method against the real HTTP server', async (t) => {
  const { baseUrl, control } = await listenTestApp(t);
  const client = new PlinthClient({ baseUrl: `${baseUrl}/`, token: TEST_TOKEN, timeoutMs: 5000 });

  t.same(await client.health(), { status: 'ok' });
  t.same(await client.ready(), { ready: true, reasons: [] });
  control.readinessState = { ready: false, reasons: ['raft: no leader'] };
  t.same(await client.ready(), { ready: false, reasons: ['raft: no leader'] }, '503 resolves with reasons');

  const created = await client.createVolume({ name: 'db1', size: '2GiB', replicas: 2 });
  t.match(created, { name: 'db1', sizeBytes: 2 * GIB, replicaCount: 2 });
  t.match(await client.createVolume({ name: 'db2', size: 4096 }), { sizeBytes: 4096, replicaCount: 1 });
  t.same((await client.listVolumes()).map((v) => v.name), ['db1', 'db2']);
  t.equal((await client.getVolume('db1')).id, created.id);
  t.equal((await client.resizeVolume('db1', '3GiB')).sizeBytes, 3 * GIB);
  t.equal((await client.attachVolume('db1', 'node-2')).attachedTo, 'node-2');
  t.equal((await client.attachVolume('db1', 'node-3', { force: true })).attachedTo, 'node-3');
  t.equal((await client.detachVolume('db1')).attachedTo, null);
  t.equal((await client.detachVolume('db1', { force: true })).attachedTo, null);
  await client.deleteVolume('db2');
  t.same((await client.listVolumes()).map((v) => v.name), ['db1']);
  t.match(await client.cluster(), { clusterId: 'cluster-test', volumeCount: 1 });
  t.equal((await client.nodes()).length, 3);
});

t.test('error responses become PlinthApiError with code, status and details', async (t) => {
  const { baseUrl } = await listenTestApp(t);
  const client = new PlinthClient({ baseUrl, token: TEST_TOKEN });
  const missing = await client.getVolume('ghost').then(
    () => undefined,
    (err: unknown) => err,
  );
  t.ok(missing instanceof PlinthApiError);
  t.match(missing, { code: 'VOLUME_NOT_FOUND', status: 404, message: 'volume "ghost" not found', details: { name: 'ghost' } });
  await t.rejects(client.createVolume({ name: 'x', size: '10GB' }), { code: 'INVALID_SIZE', status: 400 });
  await t.rejects(client.createVolume({ name: 'Bad Name', size: 1 }), { code: 'INVALID_NAME', status: 400 });
  // Names are path-encoded, not spliced into the URL.
  await t.rejects(client.getVolume('a/../../healthz'), { code: 'INVALID_NAME', status: 400 });

  const wrongToken = new PlinthClient({ baseUrl, token: 'nope' });
  await t.rejects(wrongToken.listVolumes(), { code: 'UNAUTHORIZED', status: 401, message: /<data-dir>\/api-token/ });
});

t.test('an unreachable daemon gives a clear connection error', async (t) => {
  const port = await closedLoopbackPort();
  const client = new PlinthClient({ baseUrl: `http://127.0.0.1:${port}`, token: TEST_TOKEN, timeoutMs: 5000 });
  const err = await client.listVolumes().then(() => undefined, (e: unknown) => e);
  t.ok(err instanceof PlinthConnectionError);
  t.match(err, {
    code: 'UNREACHABLE',
    message: `cannot reach plinthd at http://127.0.0.1:${port}: ECONNREFUSED — is the daemon running?`,
  });
});

/** A raw TCP server on loopback that answers each connection with `respond`. */
async function rawServer(t: { teardown(fn: () => unknown): void }, respond: (socket: Socket) => void): Promise<string> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.once('data', () => respond(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('expected a TCP address');
  return `http://127.0.0.1:${address.port}`;
}

t.test('a daemon that never answers times out', async (t) => {
  const baseUrl = await rawServer(t, () => undefined);
  const client = new PlinthClient({ baseUrl, token: TEST_TOKEN, timeoutMs: 200 });
  const started = Date.now();
  await t.rejects(client.cluster(), { code: 'TIMEOUT', message: /did not answer within 200 ms/ });
  t.ok(Date.now() - started < 3000, 'bounded by timeoutMs');
});

t.test('non-JSON, malformed and oversized responses are reported, not trusted', async (t) => {
  const html = await rawServer(t, (socket) => {
    socket.end('HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/html\r\ncontent-length: 22\r\nconnection: close\r\n\r\n<h1>bad gateway</h1>\r\n');
  });
  await t.rejects(new PlinthClient({ baseUrl: html, token: TEST_TOKEN }).listVolumes(), {
    code: 'HTTP_502', status: 502, message: /bad gateway/,
  });

  const wrongShape = await rawServer(t, (socket) => {
    socket.end('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 12\r\nconnection: close\r\n\r\n{"hello": 1}');
  });
  await t.rejects(new PlinthClient({ baseUrl: wrongShape, token: TEST_TOKEN }).getVolume('a'), { code: 'BAD_RESPONSE' });

  const huge = await rawServer(t, (socket) => {
    socket.end(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{"volumes": [${'0,'.repeat(5000)}0]}`);
  });
  await t.rejects(new PlinthClient({ baseUrl: huge, token: TEST_TOKEN, maxResponseBytes: 1024 }).listVolumes(), {
    code: 'TOO_LARGE',
  });
});
