import { readFileSync } from 'node:fs';
import t from 'tap';
import { isLoopbackHost, tlsForNewCluster, DEFAULT_TLS_SETTINGS } from '../../../daemon/tls/tls-mode.js';
import { refusal, run } from './helpers/config-fixture.js';

/** The TLS settings (daemon/config/tls-settings.ts): flag, env and YAML each, defaults, refusals. */

const TOKEN = 'ab'.repeat(32);

t.test('defaults: tls auto, NBD TLS required when on, no operator certificates, no join token', async (t) => {
  const config = run([]);
  t.same(config.tls, { mode: 'auto', nbd: 'required', nbdClientCerts: 'required', certFile: null, keyFile: null, caFile: null });
  t.equal(config.joinToken, null);
});

t.test('flags', async (t) => {
  const config = run(['--tls', 'on', '--nbd-tls', 'optional', '--nbd-tls-client-certs', 'off', '--tls-cert-file', '/c.pem', '--tls-key-file', '/k.pem', '--tls-ca-file', '/ca.pem', '--join-token', TOKEN]);
  t.same(config.tls, { mode: 'on', nbd: 'optional', nbdClientCerts: 'off', certFile: '/c.pem', keyFile: '/k.pem', caFile: '/ca.pem' });
  t.equal(config.joinToken, TOKEN);
  t.equal(config.sources['join-token'], '--join-token');
});

t.test('env and YAML', async (t) => {
  const fromEnv = run([], { PLINTH_TLS: 'off', PLINTH_JOIN_TOKEN: TOKEN.toUpperCase(), PLINTH_NBD_TLS: 'required' });
  t.equal(fromEnv.tls.mode, 'off');
  t.equal(fromEnv.joinToken, TOKEN, 'hex is case-insensitive');
  const fromFile = run(['--config', '/p.yaml'], {}, { '/p.yaml': `tls: "on"\njoin-token: ${TOKEN}\ntls-cert-file: /a\ntls-key-file: /b\ntls-ca-file: /c\n` });
  t.equal(fromFile.tls.mode, 'on');
  t.equal(fromFile.tls.caFile, '/c');
  t.equal(fromFile.joinToken, TOKEN);
});

t.test('nbd-tls-client-certs: required by default, off from flag, env or YAML, nothing else', async (t) => {
  t.equal(run([]).tls.nbdClientCerts, 'required');
  t.equal(run(['--nbd-tls-client-certs', 'required']).tls.nbdClientCerts, 'required');
  t.equal(run([], { PLINTH_NBD_TLS_CLIENT_CERTS: 'off' }).tls.nbdClientCerts, 'off');
  const fromFile = run(['--config', '/p.yaml'], {}, { '/p.yaml': 'nbd-tls-client-certs: "off"\n' });
  t.equal(fromFile.tls.nbdClientCerts, 'off');
  t.match(fromFile.sources['nbd-tls-client-certs'], /p\.yaml: nbd-tls-client-certs$/);
  const bad = refusal(['--nbd-tls-client-certs', 'optional']);
  t.equal(bad.code, 'CONFIG_INVALID');
  t.match(bad.message, /--nbd-tls-client-certs="optional": expected one of required, off/);
});

t.test('the TLS keys of systemd/plinth.yaml, uncommented, are valid settings', async (t) => {
  // dist/test/unit/daemon/config-tls.test.js → the repository root.
  const example = readFileSync(new URL('../../../../systemd/plinth.yaml', import.meta.url), 'utf8');
  const keys = ['tls', 'join-token', 'nbd-tls', 'nbd-tls-client-certs', 'tls-cert-file', 'tls-key-file', 'tls-ca-file'];
  const lines = example.split('\n').filter((line) => keys.some((key) => line.startsWith(`# ${key}: `))).map((line) => line.slice(2));
  t.equal(lines.length, keys.length, `every TLS key is shown: ${lines.join(' | ')}`);
  const config = run(['--config', '/p.yaml'], {}, { '/p.yaml': `${lines.join('\n')}\n` });
  t.equal(config.tls.mode, 'auto');
  t.equal(config.tls.nbdClientCerts, 'required');
  t.equal(config.tls.caFile, '/etc/plinth/tls/ca.crt');
  t.match(config.joinToken, /^[0-9a-f]{64}$/);
});

t.test('refusals name the setting and never quote a join token', async (t) => {
  t.match(refusal(['--tls', 'yes']).message, /--tls="yes": expected one of auto, on, off/);
  t.match(refusal(['--nbd-tls', 'off']).message, /expected one of required, optional/);
  t.match(refusal(['--tls-cert-file', '/c.pem']).message, /need all of tls-cert-file, tls-key-file and tls-ca-file/);
  t.match(refusal(['--tls', 'off', '--tls-cert-file', '/a', '--tls-key-file', '/b', '--tls-ca-file', '/c']).message, /contradicts/);
  const bad = refusal(['--join-token', 'hunter2hunter2']);
  t.equal(bad.code, 'CONFIG_INVALID');
  t.match(bad.message, /--join-token: not a join token/);
  t.notMatch(bad.message, /hunter2/);
});

t.test('loopback hosts', async (t) => {
  for (const host of ['127.0.0.1', '127.8.9.10', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1']) t.ok(isLoopbackHost(host), host);
  for (const host of ['0.0.0.0', '::', '10.0.0.1', 'storage-1', '192.168.1.2']) t.notOk(isLoopbackHost(host), host);
});

t.test('a new cluster: auto is on exactly when a listen address is not loopback', async (t) => {
  t.same(tlsForNewCluster(DEFAULT_TLS_SETTINGS, ['127.0.0.1', '127.0.0.1', 'localhost']).on, false);
  const exposed = tlsForNewCluster(DEFAULT_TLS_SETTINGS, ['127.0.0.1', '0.0.0.0', '127.0.0.1']);
  t.equal(exposed.on, true);
  t.match(exposed.reason, /0\.0\.0\.0 is not a loopback address/);
  t.equal(tlsForNewCluster({ ...DEFAULT_TLS_SETTINGS, mode: 'on' }, ['127.0.0.1']).on, true);
  t.equal(tlsForNewCluster({ ...DEFAULT_TLS_SETTINGS, mode: 'off' }, ['10.0.0.1']).on, false);
  t.equal(tlsForNewCluster({ ...DEFAULT_TLS_SETTINGS, certFile: '/c', keyFile: '/k', caFile: '/ca' }, ['127.0.0.1']).on, true);
});
