import t from 'tap';
import { isSecretFieldName, MIN_SCRUBBED_SECRET_LENGTH, REDACTED, redactSecretFields, scrubSecretValues, secretValuesIn } from '../../../daemon/support/redaction.js';

t.test('every secret-shaped field name is redacted, at any depth, whatever its value (unset ones stay unset)', async (t) => {
  const input = {
    clusterSecret: 'c1',
    apiToken: 'tok',
    'api-token': 'tok2',
    join_token: 'jt',
    tlsKey: '-----BEGIN PRIVATE KEY-----',
    'tls-key-file': '/etc/plinth/node.key',
    privateKey: { pem: 'x' },
    password: 'p',
    adminPassword: 'p2',
    passwd: 'p3',
    passphrase: 'pp',
    credentials: ['a'],
    PLINTH_TOKEN: 'env',
    secretfile: '/f',
    'ssh.keys': ['k'],
    keyFile: null,
    iscsiChap: { initiator: { user: 'alice', secret: 'alice-secret-1' }, target: { user: 'tgt', secret: 'target-secret-1' } },
    'iscsi-chap-secret-file': '/run/secrets/chap',
    volumes: [{ name: 'v', chap: { user: 'u', secret: 's3cr3t-value', targetUser: 'tu', targetSecret: 'ts3cr3t-value' } }],
  };
  const redacted = redactSecretFields(input);
  t.same(redacted, {
    clusterSecret: REDACTED,
    apiToken: REDACTED,
    'api-token': REDACTED,
    join_token: REDACTED,
    tlsKey: REDACTED,
    'tls-key-file': REDACTED,
    privateKey: REDACTED,
    password: REDACTED,
    adminPassword: REDACTED,
    passwd: REDACTED,
    passphrase: REDACTED,
    credentials: REDACTED,
    PLINTH_TOKEN: REDACTED,
    secretfile: REDACTED,
    'ssh.keys': REDACTED,
    keyFile: null,
    iscsiChap: { initiator: { user: 'alice', secret: REDACTED }, target: { user: 'tgt', secret: REDACTED } },
    'iscsi-chap-secret-file': REDACTED,
    volumes: [{ name: 'v', chap: { user: 'u', secret: REDACTED, targetUser: 'tu', targetSecret: REDACTED } }],
  });
  t.equal(input.iscsiChap.initiator.secret, 'alice-secret-1', 'the input is not modified');
});

t.test('nothing else is touched', async (t) => {
  const input = {
    dataDir: '/var/lib/plinth',
    nodeId: 'n1',
    api: { host: '127.0.0.1', port: 9700 },
    disks: [{ path: '/dev/sdb', sizeBytes: 1024 }],
    extentSizeBytes: 4194304,
    logLevel: 'info',
    labels: { zone: 'z1' },
    configFile: null,
    keyed: undefined,
    sources: { nbd: '--nbd' },
    nested: { deeper: { list: [1, 'two', true, null] } },
  };
  t.same(redactSecretFields(input), input);
  for (const name of ['dataDir', 'nodeId', 'extentSizeBytes', 'sources', 'user', 'targetUser', 'monkey', 'keyed', 'turkeys', 'hotkey']) {
    t.notOk(isSecretFieldName(name), name);
  }
});

t.test('secret values are collected and scrubbed from free text, also JSON-escaped', async (t) => {
  const state = { volumes: { v: { chap: { user: 'u', secret: 'chap"secret\\1', targetSecret: 'mutual-secret' } } } };
  const secrets = secretValuesIn(state);
  t.same(secrets.sort(), ['chap"secret\\1', 'mutual-secret'].sort());
  const line = JSON.stringify({ msg: 'oops', value: 'chap"secret\\1', other: 'mutual-secret and api-token-abcdef' });
  const scrubbed = scrubSecretValues(line, [...secrets, 'api-token-abcdef']);
  t.notMatch(scrubbed, /mutual-secret|api-token-abcdef|chap\\"secret/);
  t.match(scrubbed, /<redacted>/);
  t.same(JSON.parse(scrubbed), { msg: 'oops', value: REDACTED, other: `${REDACTED} and ${REDACTED}` }, 'still valid JSON');
  t.equal(scrubSecretValues('short abc stays', ['abc']), 'short abc stays', `secrets under ${MIN_SCRUBBED_SECRET_LENGTH} characters are not scrubbed by value`);
  t.equal(scrubSecretValues('xx-secret-long-xx', ['secret-long', 'xx-secret-long-xx']), REDACTED, 'the longest match wins');
});
