import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import t, { type Test } from 'tap';
import { buildApiApp } from '../../../api/build-api-app.js';
import { runCli } from '../../../api/cli/run-cli.js';
import { createLogger } from '../../../daemon/logging/create-logger.js';
import { NodeTls } from '../../../daemon/tls/node-tls.js';
import { DEFAULT_TLS_SETTINGS } from '../../../daemon/tls/tls-mode.js';
import { FakeControlPlane } from '../../helpers/fake-control-plane.js';
import { AUTH_HEADERS, errorOf, TEST_TOKEN } from './api-fixture.js';

/** POST /v1/tls/client-certificates and GET /v1/cluster/join-token (api/routes/tls-routes.ts), and their CLI commands. */

async function tempDir(test: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'plinth-tls-routes-'));
  test.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function tlsMember(test: Test): Promise<{ tls: NodeTls; dataDir: string }> {
  const dataDir = await tempDir(test);
  const tls = await NodeTls.prepare(
    { dataDir, nodeId: 'n1', settings: { ...DEFAULT_TLS_SETTINGS, mode: 'on' }, listenHosts: ['127.0.0.1'], joining: false, joinToken: null },
    { logger: pino({ level: 'silent' }) },
  );
  return { tls, dataDir };
}

/** The app at debug level, logging into a string the test can search for leaked secrets. */
async function appWith(test: Test, tls: NodeTls): Promise<{ app: FastifyInstance; logText: () => string }> {
  const stream = new PassThrough();
  let logText = '';
  stream.on('data', (chunk: Buffer) => (logText += chunk.toString()));
  const app = await buildApiApp({ token: TEST_TOKEN, version: '0.1.0-test', logger: pino({ level: 'debug' }, stream) }, { control: new FakeControlPlane(), metrics: new Registry(), tls });
  test.teardown(() => app.close());
  return { app, logText: () => logText };
}

t.test('both routes refuse a request without the API token', async (t) => {
  const { app } = await appWith(t, (await tlsMember(t)).tls);
  const cert = await app.inject({ method: 'POST', url: '/v1/tls/client-certificates', payload: { name: 'alice' } });
  t.equal(cert.statusCode, 401);
  t.equal(errorOf(cert).code, 'UNAUTHORIZED');
  const token = await app.inject({ url: '/v1/cluster/join-token', headers: { authorization: 'Bearer wrong' } });
  t.equal(token.statusCode, 401);
  t.notMatch(token.body, /[0-9a-f]{64}/, 'no token in the refusal');
});

t.test('a TLS member answers a client certificate and its join token, and logs neither secret', async (t) => {
  const { tls, dataDir } = await tlsMember(t);
  const { app, logText } = await appWith(t, tls);
  const response = await app.inject({ method: 'POST', url: '/v1/tls/client-certificates', headers: AUTH_HEADERS, payload: { name: 'alice', days: 30 } });
  t.equal(response.statusCode, 201, response.body);
  const body = response.json<{ caCert: string; clientCert: string; clientKey: string }>();
  t.same(Object.keys(body).sort(), ['caCert', 'clientCert', 'clientKey']);
  t.equal(body.caCert, await readFile(join(dataDir, 'tls', 'ca.crt'), 'utf8'));
  t.ok(new X509Certificate(body.clientCert).checkIssued(new X509Certificate(body.caCert)));
  t.match(body.clientKey, /^-----BEGIN PRIVATE KEY-----/);

  const token = await app.inject({ url: '/v1/cluster/join-token', headers: AUTH_HEADERS });
  t.equal(token.statusCode, 200);
  t.same(token.json(), { token: (await readFile(join(dataDir, 'join-token'), 'utf8')).trim() });
  const joinToken = token.json<{ token: string }>().token;
  t.notOk(logText().includes(joinToken), 'the join token is not in the log');
  t.notOk(logText().includes('PRIVATE KEY'), 'no key in the log');
  t.match(logText(), /issued an NBD client certificate/);
});

t.test('bad bodies are 400 with the field named', async (t) => {
  const { app } = await appWith(t, (await tlsMember(t)).tls);
  const post = (payload: object) => app.inject({ method: 'POST', url: '/v1/tls/client-certificates', headers: AUTH_HEADERS, payload });
  const badName = await post({ name: 'a,b' });
  t.equal(badName.statusCode, 400);
  t.match(errorOf(badName), { code: 'INVALID_NAME' });
  t.equal((await post({ name: 'alice', days: 0 })).statusCode, 400);
  t.equal((await post({ name: 'alice', days: 100_000 })).statusCode, 400);
  t.equal((await post({ name: 'alice', extra: 1 })).statusCode, 400);
  t.equal((await post({})).statusCode, 400);
});

t.test('a plain cluster answers with the reason', async (t) => {
  const { app } = await appWith(t, NodeTls.plain());
  const token = await app.inject({ url: '/v1/cluster/join-token', headers: AUTH_HEADERS });
  t.equal(token.statusCode, 404);
  t.match(errorOf(token), { code: 'NOT_FOUND', message: /runs without TLS/ });
  const cert = await app.inject({ method: 'POST', url: '/v1/tls/client-certificates', headers: AUTH_HEADERS, payload: { name: 'alice' } });
  t.equal(cert.statusCode, 400);
  t.match(errorOf(cert), { code: 'CONFIG_INVALID', message: /runs without TLS/ });
});

t.test('the routes are in the OpenAPI document behind the token', async (t) => {
  const { app } = await appWith(t, NodeTls.plain());
  const doc = (await app.inject({ url: '/docs/json' })).json<{ paths: Record<string, Record<string, { security?: unknown; responses?: Record<string, unknown> }>> }>();
  t.same(doc.paths['/v1/tls/client-certificates']?.['post']?.security, [{ bearerAuth: [] }]);
  t.ok(doc.paths['/v1/tls/client-certificates']?.['post']?.responses?.['201']);
  t.same(doc.paths['/v1/cluster/join-token']?.['get']?.security, [{ bearerAuth: [] }]);
});

t.test('CLI: tls client-cert writes the GnuTLS folder (key 0600), refuses to overwrite, cluster join-token prints the token', async (t) => {
  const { tls, dataDir } = await tlsMember(t);
  const { app } = await appWith(t, tls);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('expected a TCP address');
  const plinth = async (...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> => {
    let stdout = '';
    let stderr = '';
    const io = { stdout: { write: (text: string) => (stdout += text) }, stderr: { write: (text: string) => (stderr += text) }, env: {}, cwd: dataDir };
    const code = await runCli(['--api', `http://127.0.0.1:${address.port}`, '--token', TEST_TOKEN, ...args], io);
    return { code, stdout, stderr };
  };
  const out = join(await tempDir(t), 'alice');
  const issued = await plinth('tls', 'client-cert', 'alice', '--out', out, '--days', '10');
  t.equal(issued.code, 0, issued.stderr);
  t.match(issued.stdout, `nbds://NODE:10809/VOLUME?tls-certificates=${out}`);
  t.equal((await stat(join(out, 'client-key.pem'))).mode & 0o777, 0o600);
  t.equal(await readFile(join(out, 'ca-cert.pem'), 'utf8'), await readFile(join(dataDir, 'tls', 'ca.crt'), 'utf8'));
  t.match(new X509Certificate(await readFile(join(out, 'client-cert.pem'))).subject, /CN=alice/);
  const again = await plinth('tls', 'client-cert', 'alice', '--out', out);
  t.equal(again.code, 1);
  t.match(again.stderr, /already holds a client certificate \(pass --force/);
  t.equal((await plinth('tls', 'client-cert', 'alice', '--out', out, '--force')).code, 0);
  t.equal((await plinth('tls', 'client-cert', 'alice', '--days', 'ten')).code, 2);

  const token = await plinth('cluster', 'join-token');
  t.same(token, { code: 0, stdout: `${(await readFile(join(dataDir, 'join-token'), 'utf8')).trim()}\n`, stderr: '' });
});

t.test('the daemon logger censors join tokens and handed-out keys wherever they are logged', async (t) => {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const logger = createLogger('info', stream);
  const token = 'ab'.repeat(32);
  logger.info({ joinToken: token }, 'top level');
  logger.info({ config: { joinToken: token } }, 'a config');
  logger.info({ grant: { caKeyPem: 'CA-KEY-PEM' }, bundle: { clientKey: 'CLIENT-KEY-PEM' } }, 'a grant and a bundle');
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(text.split('\n').filter((line) => line !== '').length, 3);
  t.notOk(text.includes(token), 'no join token');
  t.notOk(text.includes('KEY-PEM'), 'no keys');
  t.equal(text.match(/\[redacted\]/g)?.length, 4);
});
