import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, createServer as createTlsServer, type TLSSocket } from 'node:tls';
import pino from 'pino';
import t, { type Test } from 'tap';
import { DEFAULT_CLIENT_CERT_DAYS, issueClientCertificate, MAX_CLIENT_CERT_DAYS } from '../../../../daemon/tls/client-certificates.js';
import { NodeTls, type NodeTlsOptions } from '../../../../daemon/tls/node-tls.js';
import { DEFAULT_TLS_SETTINGS } from '../../../../daemon/tls/tls-mode.js';
import { createCa, generateKeyPair, issueNodeCert } from '../../../../daemon/tls/x509-issuer.js';
import { createTestCertificates } from '../../../helpers/test-certificates.js';

/** NBD client certificates (daemon/tls/client-certificates.ts, docs/security.md "NBD"): what is issued, and by whom. */

const DAY_MS = 24 * 60 * 60 * 1000;
const CLIENT_AUTH_OID = '1.3.6.1.5.5.7.3.2';
const logger = pino({ level: 'silent' });

async function tempDir(test: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'plinth-client-cert-'));
  test.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function options(dir: string, overrides: Partial<NodeTlsOptions> = {}): NodeTlsOptions {
  return { dataDir: dir, nodeId: 'n1', settings: { ...DEFAULT_TLS_SETTINGS, mode: 'on' }, listenHosts: ['127.0.0.1'], joining: false, joinToken: null, ...overrides };
}

t.test('a client certificate: CN = name, clientAuth only, no names, signed by the CA, for the key it comes with', async (t) => {
  const ca = await createCa('Plinth cluster CA (test)');
  const now = new Date();
  const bundle = await issueClientCertificate(ca, { name: 'backup-host.example' }, now);
  t.equal(bundle.caCert, ca.certPem, 'the CA to verify the server with');
  const cert = new X509Certificate(bundle.clientCert);
  const caCert = new X509Certificate(ca.certPem);
  t.ok(cert.checkIssued(caCert), 'issuer is the cluster CA');
  t.ok(cert.verify(caCert.publicKey), 'signature of the cluster CA');
  t.match(cert.subject, /^CN=backup-host\.example$/m);
  t.same(cert.keyUsage, [CLIENT_AUTH_OID], 'extended key usage: clientAuth only');
  t.equal(cert.subjectAltName, undefined, 'no subject alternative names');
  t.equal(cert.ca, false);
  const certifiedKey = cert.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const givenKey = createPublicKey(createPrivateKey(bundle.clientKey)).export({ type: 'spki', format: 'pem' }).toString();
  t.equal(certifiedKey, givenKey, 'the certificate is for the key handed out with it');
  const validMs = Date.parse(cert.validTo) - now.getTime();
  t.ok(Math.abs(validMs - DEFAULT_CLIENT_CERT_DAYS * DAY_MS) < 2 * 60 * 1000, `valid ${DEFAULT_CLIENT_CERT_DAYS} days by default`);

  const short = new X509Certificate((await issueClientCertificate(ca, { name: 'a', days: 7 }, now)).clientCert);
  t.ok(Math.abs(Date.parse(short.validTo) - now.getTime() - 7 * DAY_MS) < 2 * 60 * 1000, 'valid 7 days when asked');
  const other = await issueClientCertificate(ca, { name: 'a' }, now);
  t.not(other.clientKey, bundle.clientKey, 'a fresh key each time');
});

t.test('bad names and validities are refused before anything is signed', async (t) => {
  const ca = await createCa('Plinth cluster CA (test)');
  for (const name of ['', 'a,b', 'CN=x', '-leading', 'has space', 'x'.repeat(65), 'ünïcode']) {
    await t.rejects(issueClientCertificate(ca, { name }), { code: 'INVALID_NAME' }, JSON.stringify(name));
  }
  for (const days of [0, -1, 1.5, MAX_CLIENT_CERT_DAYS + 1, Number.NaN]) {
    await t.rejects(issueClientCertificate(ca, { name: 'ok', days }), { code: 'INVALID_ARGUMENT' }, String(days));
  }
});

t.test('a server that demands client certificates of the CA admits the issued one and refuses another CA\'s', async (t) => {
  const ca = await createCa('Plinth cluster CA (test)');
  const serverKeys = await generateKeyPair();
  const serverCert = await issueNodeCert(ca, { nodeId: 'n1', publicKeyPem: serverKeys.publicKeyPem, hosts: ['127.0.0.1'] });
  const server = createTlsServer({ key: serverKeys.privateKeyPem, cert: serverCert, ca: ca.certPem, requestCert: true, rejectUnauthorized: true }, (socket) => socket.end('hello'));
  server.on('tlsClientError', () => undefined);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => new Promise((resolve) => server.close(resolve)));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('expected a TCP address');

  const attempt = async (client: { cert: string; key: string }): Promise<string> => {
    const socket: TLSSocket = tlsConnect({ host: '127.0.0.1', port: address.port, ca: ca.certPem, cert: client.cert, key: client.key, servername: 'localhost' });
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    const outcome = await Promise.race([
      once(socket, 'end').then(() => Buffer.concat(chunks).toString()),
      once(socket, 'error').then(([err]: unknown[]) => `error: ${err instanceof Error ? err.message : String(err)}`),
      new Promise<string>((resolve) => setTimeout(() => resolve('timeout'), 5000)),
    ]);
    socket.destroy();
    return outcome;
  };
  const issued = await issueClientCertificate(ca, { name: 'alice' });
  t.equal(await attempt({ cert: issued.clientCert, key: issued.clientKey }), 'hello');
  const foreignCa = await createCa('another cluster');
  const foreign = await issueClientCertificate(foreignCa, { name: 'alice' });
  // TLS 1.3: the client may finish its side before the server's alert arrives, so the refusal shows as an error or an empty close.
  const refused = await attempt({ cert: foreign.clientCert, key: foreign.clientKey });
  t.match(refused, /^(error: .*|)$/, `another CA's certificate is refused (got ${JSON.stringify(refused)})`);
});

t.test('NodeTls: a TLS member issues certificates and reveals its join token; plain and operator-certificate nodes say why not', async (t) => {
  const member = await NodeTls.prepare(options(await tempDir(t)), { logger });
  const bundle = await member.issueClientCertificate({ name: 'alice' });
  t.equal(bundle.caCert, member.serverCredentials?.ca);
  t.match(member.requireJoinToken(), /^[0-9a-f]{64}$/);
  await t.rejects(member.issueClientCertificate({ name: 'a b' }), { code: 'INVALID_NAME' });

  const plain = NodeTls.plain();
  t.throws(() => plain.requireJoinToken(), { code: 'NOT_FOUND', message: /runs without TLS and has no join token/ });
  await t.rejects(plain.issueClientCertificate({ name: 'alice' }), { code: 'CONFIG_INVALID', details: { reason: 'tls-off' } });

  const certs = await createTestCertificates(await tempDir(t));
  const settings = { ...DEFAULT_TLS_SETTINGS, mode: 'on' as const, certFile: certs.serverCertPath, keyFile: certs.serverKeyPath, caFile: certs.caCertPath };
  const operator = await NodeTls.prepare(options(await tempDir(t), { settings }), { logger });
  t.equal(operator.enabled, true);
  await t.rejects(operator.issueClientCertificate({ name: 'alice' }), { code: 'CONFIG_INVALID', details: { reason: 'no-ca-key' }, message: /holds no CA key/ });
});

t.test('a client certificate never outlives the CA that signed it', async (t) => {
  const ca = await createCa('Plinth cluster CA (old)', new Date(Date.now() - 100 * DAY_MS));
  const cert = new X509Certificate((await issueClientCertificate(ca, { name: 'late', days: MAX_CLIENT_CERT_DAYS })).clientCert);
  t.equal(Date.parse(cert.validTo), Date.parse(new X509Certificate(ca.certPem).validTo));
});
