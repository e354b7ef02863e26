/**
 * ARCHITECTURE invariant 7 against the whole daemon: malformed NBD bytes and
 * malformed REST requests each get a clear error or a dropped connection,
 * cost only that request or connection, and afterwards the daemon still
 * serves nbdinfo and the API and has lost nothing.
 */
import { randomBytes } from 'node:crypto';
import t from 'tap';
import type { Test } from 'tap';
import { apiRequest, createVolume, errorCode, healthz, type ApiResponse } from '../setup/e2e-api.js';
import type { E2eDaemon } from '../setup/e2e-daemon.js';
import { LOOPBACK } from '../setup/e2e-daemon.js';
import { makeWorkDir, startDaemon } from '../setup/e2e-fixture.js';
import { nbdinfoExport, nbdsh } from '../setup/e2e-nbd.js';
import { describeRun, missingToolsReason } from '../setup/e2e-process.js';
import {
  CLIENT_FLAGS,
  encodeOption,
  encodeRequest,
  NBD_CMD_WRITE,
  NBD_OPT_GO,
  NBD_REP_FLAG_ERROR,
  RawNbdClient,
  u32,
} from '../setup/e2e-raw-nbd.js';

const MIB = 1024 ** 2;
const WAIT_MS = 10_000;

async function connect(daemon: E2eDaemon): Promise<RawNbdClient> {
  return RawNbdClient.connect(LOOPBACK, daemon.nbdPort, WAIT_MS);
}

/** The server must drop the connection; whatever it sent first must not be a success. */
async function expectDropped(t: Test, client: RawNbdClient, what: string): Promise<void> {
  const { closed, received } = await client.waitClosed(WAIT_MS);
  client.destroy();
  t.ok(closed, `${what}: server closed the connection`);
  if (received.length >= 20) {
    const replyType = received.readUInt32BE(12);
    t.ok((replyType & NBD_REP_FLAG_ERROR) !== 0, `${what}: the reply is an error (type 0x${replyType.toString(16)})`);
  }
}

async function expectStillServing(t: Test, daemon: E2eDaemon): Promise<void> {
  t.ok(daemon.isRunning(), 'daemon still running');
  const info = await nbdinfoExport(daemon.nbdUri('good'));
  t.equal(info.sizeBytes, 64 * MIB, 'nbdinfo still works');
  t.equal(await healthz(daemon.apiUrl), 200, '/healthz still 200');
}

function expectError(t: Test, response: ApiResponse, status: number, codes: readonly string[], what: string): void {
  t.equal(response.status, status, `${what}: HTTP ${status} (${response.text.slice(0, 300)})`);
  t.ok(codes.includes(errorCode(response) ?? ''), `${what}: error code one of ${codes.join('/')}, got ${errorCode(response)}`);
}

/** Bytes sent after the server greeting; each must get the connection dropped. */
interface HandshakeAbuse {
  readonly name: string;
  readonly bytes: () => Buffer;
  /** Half-close our side after sending (a client that gives up mid-message). */
  readonly hangUp: boolean;
}

function wrongMagicOption(): Buffer {
  const option = encodeOption(NBD_OPT_GO, Buffer.alloc(0));
  option.write('IHAVEOPX', 0, 'latin1');
  return Buffer.concat([u32(CLIENT_FLAGS), option]);
}

const HANDSHAKE_ABUSES: readonly HandshakeAbuse[] = [
  { name: 'garbage instead of client flags', bytes: () => Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0xff]), randomBytes(252)]), hangUp: false },
  { name: 'wrong option magic', bytes: wrongMagicOption, hangUp: false },
  { name: 'option truncated, then the client hangs up', bytes: () => Buffer.concat([u32(CLIENT_FLAGS), encodeOption(NBD_OPT_GO, Buffer.alloc(10), 100)]), hangUp: true },
  { name: 'oversized option length', bytes: () => Buffer.concat([u32(CLIENT_FLAGS), encodeOption(NBD_OPT_GO, Buffer.alloc(64), 0xffff_fff0)]), hangUp: false },
];

async function abuseHandshake(t: Test, daemon: E2eDaemon, abuse: HandshakeAbuse): Promise<void> {
  const client = await connect(daemon);
  await client.readGreeting(WAIT_MS);
  client.write(abuse.bytes());
  if (abuse.hangUp) client.socket.end();
  await expectDropped(t, client, abuse.name);
  await expectStillServing(t, daemon);
}

async function vanishMidWrite(t: Test, daemon: E2eDaemon): Promise<void> {
  const client = await connect(daemon);
  await client.handshakeGo('victim', WAIT_MS);
  await client.writeFlushed(Buffer.concat([encodeRequest(NBD_CMD_WRITE, 1n, 0n, MIB), Buffer.alloc(1000, 0xee)]));
  client.destroy();
  // A request whose payload never arrived must not be executed (NBD
  // proto.md "Request message": the data follows the header).
  const check = await nbdsh(daemon.nbdUri('victim'), `
assert h.pread(${MIB}, 0) == bytes(${MIB}), 'partial write became visible'
h.pwrite(b'\\x5a' * 4096, 0)
h.flush()
assert h.pread(4096, 0) == b'\\x5a' * 4096
print('VICTIM-OK')`);
  t.equal(check.code, 0, describeRun(check));
  t.match(check.stdout, /VICTIM-OK/, 'the volume is unharmed and usable');
  await expectStillServing(t, daemon);
}

async function garbageBurst(t: Test, daemon: E2eDaemon): Promise<void> {
  const deadline = Date.now() + 5_000;
  let connections = 0;
  while (connections < 50 && Date.now() < deadline) {
    const client = await connect(daemon);
    client.write(randomBytes(1 + (connections % 7) * 97));
    client.destroy();
    connections += 1;
  }
  t.ok(connections > 0, `${connections} garbage connections`);
  await expectStillServing(t, daemon);
}

async function malformedRest(t: Test, daemon: E2eDaemon): Promise<void> {
  const api = daemon.apiUrl;
  const token = daemon.token;
  const post = (json: unknown): Promise<ApiResponse> => apiRequest(api, { method: 'POST', path: '/v1/volumes', token, json });
  expectError(t, await apiRequest(api, { method: 'POST', path: '/v1/volumes', token, rawBody: '{"name": "x", "size' }), 400, ['INVALID_JSON', 'INVALID_ARGUMENT'], 'garbage JSON');
  const wrongToken = await apiRequest(api, { method: 'GET', path: '/v1/volumes', token: 'not-the-token' });
  expectError(t, wrongToken, 401, ['UNAUTHORIZED'], 'wrong token');
  t.match(wrongToken.text, /api-token/, 'the 401 says where the token lives');
  expectError(t, await apiRequest(api, { method: 'GET', path: '/v1/volumes' }), 401, ['UNAUTHORIZED'], 'no token');
  for (const size of ['10GB', '-1', 'abc', 1000, 0]) {
    expectError(t, await post({ name: 'bad-size', size }), 400, ['INVALID_SIZE', 'INVALID_ARGUMENT'], `size ${JSON.stringify(size)}`);
  }
  expectError(t, await post({ name: 'Bad_Name!', size: '1GiB' }), 400, ['INVALID_NAME', 'INVALID_ARGUMENT'], 'bad name');
  expectError(t, await post({ name: 'x1', size: '1GiB', colour: 'red' }), 400, ['INVALID_ARGUMENT'], 'unknown property');
  expectError(t, await apiRequest(api, { method: 'GET', path: '/v1/volumes/nope', token }), 404, ['VOLUME_NOT_FOUND'], 'unknown volume');
  expectError(t, await apiRequest(api, { method: 'DELETE', path: '/v1/volumes/nope', token }), 404, ['VOLUME_NOT_FOUND'], 'delete unknown volume');
  const huge = await apiRequest(api, { method: 'POST', path: '/v1/volumes', token, rawBody: JSON.stringify({ name: 'x2', size: '1GiB', pad: 'x'.repeat(2 * MIB) }) });
  t.equal(huge.status, 413, `oversized body: 413 (${huge.text.slice(0, 200)})`);
  expectError(t, await post({ name: 'good', size: '64MiB' }), 409, ['VOLUME_EXISTS'], 'duplicate volume');
}

async function nothingLost(t: Test, daemon: E2eDaemon): Promise<void> {
  await expectStillServing(t, daemon);
  const list = await apiRequest(daemon.apiUrl, { method: 'GET', path: '/v1/volumes', token: daemon.token });
  t.equal(list.status, 200, list.text);
  const names = ((list.body as { volumes?: { name: string }[] }).volumes ?? []).map((volume) => volume.name).sort();
  t.same(names, ['good', 'victim'], 'exactly the two volumes; no bad request created one');
}

const skip = missingToolsReason(['nbdinfo', 'nbdsh']);

t.test('malformed input costs only its own connection or request', { skip: skip ?? false }, async (t) => {
  const workDir = await makeWorkDir(t, 'bad-input');
  const daemon = await startDaemon(t, workDir, ['d0.img:1GiB']);
  await createVolume(daemon.apiUrl, daemon.token, 'good', '64MiB');
  await createVolume(daemon.apiUrl, daemon.token, 'victim', '64MiB');
  for (const abuse of HANDSHAKE_ABUSES) {
    await t.test(`NBD: ${abuse.name}`, (t) => abuseHandshake(t, daemon, abuse));
  }
  await t.test('NBD: a client vanishes in the middle of a WRITE payload', (t) => vanishMidWrite(t, daemon));
  await t.test('NBD: a burst of garbage connections', (t) => garbageBurst(t, daemon));
  await t.test('REST: malformed requests get clear errors', (t) => malformedRest(t, daemon));
  await t.test('afterwards: nothing lost, everything serving', (t) => nothingLost(t, daemon));
});
