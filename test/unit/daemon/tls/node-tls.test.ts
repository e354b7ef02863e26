import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import t, { type Test } from 'tap';
import { NodeTls, type NodeTlsOptions } from '../../../../daemon/tls/node-tls.js';
import { DEFAULT_TLS_SETTINGS } from '../../../../daemon/tls/tls-mode.js';
import { isIssuedBy } from '../../../../daemon/tls/x509-issuer.js';

/** NodeTls.prepare (docs/security.md "Modes"): the decision per data-dir state and setting, and what lands on disk. */

const logger = pino({ level: 'silent' });
const LOOPBACK = ['127.0.0.1', '127.0.0.1', '127.0.0.1'];

async function dataDir(test: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'plinth-node-tls-'));
  test.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function options(dir: string, overrides: Partial<NodeTlsOptions> = {}): NodeTlsOptions {
  return { dataDir: dir, nodeId: 'n1', settings: DEFAULT_TLS_SETTINGS, listenHosts: LOOPBACK, joining: false, joinToken: null, ...overrides };
}

/** What bootstrap leaves behind once Raft started: the cluster secret marks membership. */
async function markMember(dir: string): Promise<void> {
  await writeFile(join(dir, 'cluster-secret'), `${'00'.repeat(32)}\n`, { mode: 0o600 });
}

t.test('bootstrap on loopback with tls=auto stays plain and writes nothing', async (t) => {
  const dir = await dataDir(t);
  const tls = await NodeTls.prepare(options(dir), { logger });
  t.equal(tls.enabled, false);
  t.equal(tls.serverCredentials, null);
  await t.rejects(stat(join(dir, 'tls')), { code: 'ENOENT' });
  await t.rejects(stat(join(dir, 'join-token')), { code: 'ENOENT' });
});

t.test('bootstrap with tls=on (or a non-loopback address) makes the CA, the node certificate and a join token; a restart keeps them', async (t) => {
  const dir = await dataDir(t);
  const tls = await NodeTls.prepare(options(dir, { listenHosts: ['127.0.0.1', '10.1.2.3', '127.0.0.1'] }), { logger });
  t.equal(tls.enabled, true);
  const credentials = tls.serverCredentials;
  if (credentials === null) throw new Error('no credentials');
  t.ok(isIssuedBy(credentials.cert, credentials.ca));
  t.equal((await stat(join(dir, 'join-token'))).mode & 0o777, 0o600);
  t.equal(tls.joinToken, (await readFile(join(dir, 'join-token'), 'utf8')).trim());
  await markMember(dir);
  const restarted = await NodeTls.prepare(options(dir, { settings: { ...DEFAULT_TLS_SETTINGS, mode: 'off' } }), { logger });
  t.equal(restarted.enabled, true, 'a TLS cluster stays TLS, whatever tls says now');
  t.equal(restarted.serverCredentials?.cert, credentials.cert);
});

t.test('tls=on cannot turn TLS on for one node of a plain cluster', async (t) => {
  const dir = await dataDir(t);
  await markMember(dir);
  await t.rejects(NodeTls.prepare(options(dir, { settings: { ...DEFAULT_TLS_SETTINGS, mode: 'on' } }), { logger }), {
    code: 'CONFIG_INVALID',
    message: /created without TLS/,
  });
});

t.test('joining: plain without a token on loopback; a token means TLS; tls=on without a token is refused', async (t) => {
  const plain = await NodeTls.prepare(options(await dataDir(t), { joining: true }), { logger });
  t.equal(plain.enabled, false);
  const token = 'cd'.repeat(32);
  const joiner = await NodeTls.prepare(options(await dataDir(t), { joining: true, joinToken: token }), { logger });
  t.equal(joiner.enabled, true);
  t.equal(joiner.joinToken, token);
  t.match(joiner.joinPublicKeyPem ?? '', /BEGIN PUBLIC KEY/);
  await t.rejects(NodeTls.prepare(options(await dataDir(t), { joining: true, settings: { ...DEFAULT_TLS_SETTINGS, mode: 'on' } }), { logger }), {
    code: 'CONFIG_INVALID',
    message: /needs the cluster's join token/,
  });
});

t.test('a member signs a joiner, and the joiner adopts the grant onto disk', async (t) => {
  const memberDir = await dataDir(t);
  const member = await NodeTls.prepare(options(memberDir, { settings: { ...DEFAULT_TLS_SETTINGS, mode: 'on' } }), { logger });
  const joinerDir = await dataDir(t);
  const token = member.joinToken ?? '';
  const joiner = await NodeTls.prepare(options(joinerDir, { nodeId: 'n2', joining: true, joinToken: token }), { logger });
  const grant = await member.signJoiner({ nodeId: 'n2', publicKeyPem: joiner.joinPublicKeyPem ?? '', hosts: ['127.0.0.1'] });
  await joiner.adopt(grant);
  t.equal(joiner.serverCredentials?.ca, member.serverCredentials?.ca, 'the cluster CA');
  t.ok(isIssuedBy(joiner.serverCredentials?.cert ?? '', member.serverCredentials?.ca ?? ''));
  t.equal((await readFile(join(joinerDir, 'join-token'), 'utf8')).trim(), token);
  await markMember(joinerDir);
  const restarted = await NodeTls.prepare(options(joinerDir, { nodeId: 'n2' }), { logger });
  t.equal(restarted.enabled, true);
  t.equal(restarted.serverCredentials?.key, joiner.serverCredentials?.key);
});
