import { Writable } from 'node:stream';
import t from 'tap';
import { refusal, run } from './helpers/config-fixture.js';
import { createLogger } from '../../../daemon/logging/create-logger.js';

/** Cluster-wide iSCSI CHAP settings (docs/operations.md "iSCSI CHAP"): flags, YAML, env, secret files, validation. */

const SECRET = 'initiator-secret-1';
const TARGET_SECRET = 'target-secret-22';

t.test('no CHAP settings: iscsiChap is null', async (t) => {
  t.equal(run([]).iscsiChap, null);
});

t.test('flags with secret files; one trailing line ending is not part of the secret', async (t) => {
  const config = run(
    ['--iscsi-chap-user', 'alice', '--iscsi-chap-secret-file', '/s/init', '--iscsi-chap-target-user', 'plinth', '--iscsi-chap-target-secret-file', '/s/target'],
    {},
    { '/s/init': `${SECRET}\n`, '/s/target': `${TARGET_SECRET}\r\n` },
  );
  t.same(config.iscsiChap, { initiator: { user: 'alice', secret: SECRET }, target: { user: 'plinth', secret: TARGET_SECRET } });
  t.equal(config.sources['iscsi-chap-secret-file'], '--iscsi-chap-secret-file');
});

t.test('env: PLINTH_ISCSI_CHAP_SECRET or the file variable', async (t) => {
  const config = run([], { PLINTH_ISCSI_CHAP_USER: 'alice', PLINTH_ISCSI_CHAP_SECRET: SECRET });
  t.same(config.iscsiChap, { initiator: { user: 'alice', secret: SECRET }, target: null });
  const fromFile = run([], { PLINTH_ISCSI_CHAP_USER: 'alice', PLINTH_ISCSI_CHAP_SECRET_FILE: '/s/init' }, { '/s/init': SECRET });
  t.same(fromFile.iscsiChap?.initiator, { user: 'alice', secret: SECRET });
});

t.test('YAML keys, secrets inline', async (t) => {
  const yaml = [
    'iscsi-chap-user: alice',
    `iscsi-chap-secret: ${SECRET}`,
    'iscsi-chap-target-user: plinth',
    `iscsi-chap-target-secret: ${TARGET_SECRET}`,
  ].join('\n');
  const config = run(['--config', '/etc/plinth.yaml'], {}, { '/etc/plinth.yaml': yaml });
  t.same(config.iscsiChap, { initiator: { user: 'alice', secret: SECRET }, target: { user: 'plinth', secret: TARGET_SECRET } });
  // Precedence per key as for every setting: the flag's user wins over the file's.
  const overridden = run(['--config', '/etc/plinth.yaml', '--iscsi-chap-user', 'carol'], {}, { '/etc/plinth.yaml': yaml });
  t.equal(overridden.iscsiChap?.initiator.user, 'carol');
});

t.test('a secret is never a flag', async (t) => {
  for (const argv of [['--iscsi-chap-secret', SECRET], [`--iscsi-chap-target-secret=${TARGET_SECRET}`]]) {
    const error = refusal(argv);
    t.equal(error.code, 'CONFIG_INVALID');
    t.match(error.message, /secrets are not taken on the command line .*-file/);
    t.notOk(error.message.includes(SECRET) || error.message.includes(TARGET_SECRET), 'the refusal does not echo the secret');
  }
});

t.test('validation: clear CONFIG_INVALID refusals that never quote a secret', async (t) => {
  const cases: [string, string[], Record<string, string>, Record<string, string>, RegExp][] = [
    ['short secret', ['--iscsi-chap-user', 'a', '--iscsi-chap-secret-file', '/f'], {}, { '/f': 'eleven-byte' }, /--iscsi-chap-secret-file \(\/f\) must be 12 to 255 bytes long, got 11/],
    ['long secret', [], { PLINTH_ISCSI_CHAP_USER: 'a', PLINTH_ISCSI_CHAP_SECRET: 'y'.repeat(256) }, {}, /PLINTH_ISCSI_CHAP_SECRET must be 12 to 255 bytes long, got 256/],
    ['user without secret', ['--iscsi-chap-user', 'a'], {}, {}, /--iscsi-chap-user is set but iscsi-chap-secret\(-file\) is not/],
    ['secret without user', [], { PLINTH_ISCSI_CHAP_SECRET: SECRET }, {}, /PLINTH_ISCSI_CHAP_SECRET is set but iscsi-chap-user is not/],
    ['mutual without one-way', ['--iscsi-chap-target-user', 'p', '--iscsi-chap-target-secret-file', '/t'], {}, { '/t': TARGET_SECRET }, /needs one-way CHAP too/],
    ['same secret both ways', ['--iscsi-chap-user', 'a', '--iscsi-chap-secret-file', '/f', '--iscsi-chap-target-user', 'p', '--iscsi-chap-target-secret-file', '/f'], {}, { '/f': SECRET }, /must differ from .*RFC 7143 §12\.1\.3/],
    ['both secret and file', ['--iscsi-chap-user', 'a', '--iscsi-chap-secret-file', '/f'], { PLINTH_ISCSI_CHAP_SECRET: SECRET }, { '/f': SECRET }, /give either PLINTH_ISCSI_CHAP_SECRET or --iscsi-chap-secret-file, not both/],
    ['unreadable file', ['--iscsi-chap-user', 'a', '--iscsi-chap-secret-file', '/missing'], {}, {}, /--iscsi-chap-secret-file="\/missing": cannot read the secret file: ENOENT/],
    ['a huge file', ['--iscsi-chap-user', 'a', '--iscsi-chap-secret-file', '/big'], {}, { '/big': 'z'.repeat(5000) }, /larger than 4096 bytes/],
    ['two lines', ['--iscsi-chap-user', 'a', '--iscsi-chap-secret-file', '/f'], {}, { '/f': `${SECRET}\nsecond-line\n` }, /must not contain control characters/],
  ];
  for (const [name, argv, env, files, message] of cases) {
    const error = refusal(argv, env, files);
    t.equal(error.code, 'CONFIG_INVALID', name);
    t.match(error.message, message, name);
    t.notOk(error.message.includes(SECRET) || error.message.includes(TARGET_SECRET), `${name}: no secret in the message`);
  }
});

t.test('the logger censors CHAP secrets wherever they sit', async (t) => {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
  const logger = createLogger('info', sink);
  const config = run([], { PLINTH_ISCSI_CHAP_USER: 'alice', PLINTH_ISCSI_CHAP_SECRET: SECRET, PLINTH_ISCSI_CHAP_TARGET_USER: 'p', PLINTH_ISCSI_CHAP_TARGET_SECRET: TARGET_SECRET });
  logger.info({ config }, 'a config, as a careless line might log it');
  logger.info({ iscsiChap: config.iscsiChap }, 'the CHAP part alone');
  logger.info({ volume: { name: 'v1', chap: { user: 'alice', secret: SECRET, targetUser: 'p', targetSecret: TARGET_SECRET } } }, 'a volume record');
  logger.info({ command: { type: 'volume.chap', name: 'v1', user: 'alice', secret: SECRET } }, 'a command');
  const output = lines.join('');
  t.equal(lines.length, 4, 'every line was written');
  t.notOk(output.includes(SECRET), 'no initiator secret in the log');
  t.notOk(output.includes(TARGET_SECRET), 'no target secret in the log');
  t.match(output, /"user":"alice"/, 'names are still logged');
  t.match(output, /\[redacted\]/);
});
