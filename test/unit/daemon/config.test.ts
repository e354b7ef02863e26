import { readFileSync } from 'node:fs';
import t from 'tap';
import { resolveConfig } from '../../../daemon/config/resolve-config.js';
import { configInput as input, refusal, run } from './helpers/config-fixture.js';

t.test('defaults', async (t) => {
  const config = run([]);
  t.equal(config.dataDir, './data');
  t.same(config.api, { host: '127.0.0.1', port: 9700 });
  t.same(config.peer, { host: '127.0.0.1', port: 9701 });
  t.same(config.nbd, { host: '127.0.0.1', port: 10809 });
  t.same(config.iscsi, { host: '127.0.0.1', port: 3260 });
  t.same(config.disks, [{ path: 'data/disks/disk0.img', sizeBytes: 64 * 1024 ** 3 }]);
  t.equal(config.nodeId, null);
  t.equal(config.join, null);
  t.equal(config.logLevel, 'info');
  t.equal(config.extentSizeBytes, null);
  t.equal(config.configFile, null);
  t.same(config.sources, {});
});

t.test('the default disk follows the data dir', async (t) => {
  t.same(run(['--data-dir', '/srv/p']).disks, [{ path: '/srv/p/disks/disk0.img', sizeBytes: 64 * 1024 ** 3 }]);
});

t.test('every flag', async (t) => {
  const config = run([
    '--data-dir=/d',
    '--node-id',
    'n1',
    '--api',
    '0.0.0.0:1',
    '--peer',
    '[::1]:2',
    '--nbd',
    'localhost:3',
    '--iscsi',
    'storage-1.example.com:4',
    '--disk',
    '/dev/sdb',
    '--disk',
    '/d/f.img:10GiB',
    '--join',
    '10.0.0.1:9701',
    '--log-level',
    'debug',
    '--extent-size',
    '4MiB',
  ]);
  t.equal(config.dataDir, '/d');
  t.equal(config.nodeId, 'n1');
  t.same(config.api, { host: '0.0.0.0', port: 1 });
  t.same(config.peer, { host: '::1', port: 2 });
  t.same(config.nbd, { host: 'localhost', port: 3 });
  t.same(config.iscsi, { host: 'storage-1.example.com', port: 4 });
  t.same(config.disks, [{ path: '/dev/sdb' }, { path: '/d/f.img', sizeBytes: 10 * 1024 ** 3 }]);
  t.same(config.join, { host: '10.0.0.1', port: 9701 });
  t.equal(config.logLevel, 'debug');
  t.equal(config.extentSizeBytes, 4 * 1024 ** 2);
  t.equal(config.sources.nbd, '--nbd');
});

t.test('every env variable', async (t) => {
  const config = run([], {
    PLINTH_DATA_DIR: '/e',
    PLINTH_NODE_ID: 'e1',
    PLINTH_API: '127.0.0.1:11',
    PLINTH_PEER: '127.0.0.1:12',
    PLINTH_NBD: '127.0.0.1:13',
    PLINTH_ISCSI: '127.0.0.1:14',
    PLINTH_DISK: '/a.img:1GiB, /dev/sdc',
    PLINTH_JOIN: '127.0.0.1:15',
    PLINTH_LOG_LEVEL: 'warn',
    PLINTH_EXTENT_SIZE: '1MiB',
    PLINTH_TOKEN: 'the CLI token is not ours to judge',
  });
  t.equal(config.dataDir, '/e');
  t.equal(config.nodeId, 'e1');
  t.equal(config.api.port, 11);
  t.equal(config.peer.port, 12);
  t.equal(config.nbd.port, 13);
  t.equal(config.iscsi.port, 14);
  t.same(config.disks, [{ path: '/a.img', sizeBytes: 1024 ** 3 }, { path: '/dev/sdc' }]);
  t.same(config.join, { host: '127.0.0.1', port: 15 });
  t.equal(config.logLevel, 'warn');
  t.equal(config.extentSizeBytes, 1024 ** 2);
  t.equal(config.sources['node-id'], 'PLINTH_NODE_ID');
});

const FILE = [
  'data-dir: /f',
  'node-id: f1',
  'api: 127.0.0.1:21',
  'peer: 127.0.0.1:22',
  'nbd: 127.0.0.1:23',
  'iscsi: 127.0.0.1:24',
  'disk:',
  '  - /f/a.img:2GiB',
  '  - /dev/sdd',
  'join: 127.0.0.1:25',
  'log-level: error',
  'extent-size: 2097152',
  '',
].join('\n');

t.test('every config file key, via --config and PLINTH_CONFIG', async (t) => {
  for (const [argv, env] of [
    [['--config', '/etc/p.yaml'], {}],
    [[], { PLINTH_CONFIG: '/etc/p.yaml' }],
  ] as const) {
    const config = run([...argv], { ...env }, { '/etc/p.yaml': FILE });
    t.equal(config.configFile, '/etc/p.yaml');
    t.equal(config.dataDir, '/f');
    t.equal(config.nodeId, 'f1');
    t.equal(config.api.port, 21);
    t.equal(config.peer.port, 22);
    t.equal(config.nbd.port, 23);
    t.equal(config.iscsi.port, 24);
    t.same(config.disks, [{ path: '/f/a.img', sizeBytes: 2 * 1024 ** 3 }, { path: '/dev/sdd' }]);
    t.same(config.join, { host: '127.0.0.1', port: 25 });
    t.equal(config.logLevel, 'error');
    t.equal(config.extentSizeBytes, 2 * 1024 ** 2);
    t.equal(config.sources.api, '/etc/p.yaml: api');
  }
});

t.test('precedence: flags > env > file > defaults, per key', async (t) => {
  const files = { '/p.yaml': 'api: 127.0.0.1:31\nnbd: 127.0.0.1:32\npeer: 127.0.0.1:33\ndisk: [/file.img]\n' };
  const env = { PLINTH_CONFIG: '/p.yaml', PLINTH_API: '127.0.0.1:41', PLINTH_NBD: '127.0.0.1:42', PLINTH_DISK: '/env.img' };
  const config = run(['--api', '127.0.0.1:51', '--disk', '/flag.img'], env, files);
  t.equal(config.api.port, 51, 'flag beats env and file');
  t.equal(config.nbd.port, 42, 'env beats file');
  t.equal(config.peer.port, 33, 'file beats default');
  t.equal(config.iscsi.port, 3260, 'default');
  t.same(config.disks, [{ path: '/flag.img' }], 'disk lists are replaced, not merged');
  t.equal(config.sources.nbd, 'PLINTH_NBD');
});

t.test('--config beats PLINTH_CONFIG; an empty env variable counts as unset', async (t) => {
  const files = { '/a.yaml': 'nbd: 127.0.0.1:1\n', '/b.yaml': 'nbd: 127.0.0.1:2\n' };
  t.equal(run(['--config', '/a.yaml'], { PLINTH_CONFIG: '/b.yaml' }, files).nbd.port, 1);
  t.equal(run([], { PLINTH_CONFIG: '/b.yaml', PLINTH_NBD: '' }, files).nbd.port, 2);
});

t.test('an empty config file is fine', async (t) => {
  t.equal(run(['--config', '/e.yaml'], {}, { '/e.yaml': '# nothing yet\n' }).dataDir, './data');
});

t.test('help and version', async (t) => {
  t.same(resolveConfig(input(['--help'], { PLINTH_NBD: 'broken' })), { action: 'help' });
  t.same(resolveConfig(input(['-h'])), { action: 'help' });
  t.same(resolveConfig(input(['--version'])), { action: 'version' });
});

t.test('validation names the key, its source and the value', async (t) => {
  const cases: Array<[string[], Record<string, string>, Record<string, string>, string]> = [
    [[], { PLINTH_NBD: 'x:y' }, {}, 'config: PLINTH_NBD="x:y": expected HOST:PORT'],
    [['--api', '127.0.0.1'], {}, {}, 'config: --api="127.0.0.1": expected HOST:PORT'],
    [['--api', '127.0.0.1:0'], {}, {}, 'config: --api="127.0.0.1:0": port 0 is out of range'],
    [['--api', '127.0.0.1:70000'], {}, {}, 'port 70000 is out of range'],
    [['--peer', 'bad_host!:1'], {}, {}, '--peer="bad_host!:1": "bad_host!" is not a valid host name'],
    [['--peer', '[zz]:1'], {}, {}, 'is not an IPv6 address'],
    [['--disk', '/a.img:10GB'], {}, {}, 'config: --disk="/a.img:10GB": invalid size "10GB"'],
    [['--disk', ':1GiB'], {}, {}, 'the path is empty'],
    [['--disk', '/a.img:0'], {}, {}, 'disk size must be greater than 0'],
    [['--disk', '/a.img', '--disk', '/a.img:1GiB'], {}, {}, 'the same disk is listed twice'],
    [['--log-level', 'loud'], {}, {}, 'config: --log-level="loud": expected one of fatal, error'],
    [['--extent-size', '3MiB'], {}, {}, '--extent-size="3MiB": expected a power of two'],
    [['--extent-size', '32KiB'], {}, {}, '--extent-size="32KiB": expected a power of two between 64KiB and 64MiB'],
    [['--extent-size', '128MiB'], {}, {}, 'expected a power of two between 64KiB and 64MiB'],
    [['--node-id=-bad'], {}, {}, 'config: --node-id="-bad": expected 1-253 characters'],
    [['--node-id', 'a/b'], {}, {}, 'config: --node-id="a/b": expected 1-253 characters'],
    [['--data-dir', ' '], {}, {}, 'config: --data-dir=" ": expected a directory path'],
    [['--join', 'nope'], {}, {}, 'config: --join="nope": expected HOST:PORT'],
    [[], { PLINTH_DISK: '/a.img,' }, {}, 'config: PLINTH_DISK="": expected PATH[:SIZE]'],
  ];
  for (const [argv, env, files, message] of cases) {
    const err = refusal(argv, env, files);
    t.equal(err.code, 'CONFIG_INVALID', message);
    t.ok(err.message.includes(message), `${message} in ${err.message}`);
  }
});

t.test('unknown flags, stray arguments and missing values are refused', async (t) => {
  t.match(refusal(['--nbd-port', '1']).message, /^config: command line: Unknown option '--nbd-port'/);
  t.match(refusal(['serve']).message, /^config: command line: Unexpected argument 'serve'/);
  t.match(refusal(['--api']).message, /^config: command line: Option '--api <value>' argument missing/);
  t.match(refusal(['--node-id', '-x']).message, /^config: command line: Option '--node-id' argument is ambiguous\.$/);
});

t.test('a repeated single-valued flag: the last one wins, as with most CLIs', async (t) => {
  t.equal(run(['--api', '127.0.0.1:1', '--api', '127.0.0.1:2']).api.port, 2);
});

t.test('config file problems name the file and the key', async (t) => {
  const cases: Array<[string, string]> = [
    ['nbd: 127.0.0.1:1\nnbdport: 3\n', 'config: /c.yaml: unknown key "nbdport" (known keys: data-dir,'],
    ['config: /other.yaml\n', 'unknown key "config"'],
    ['nbd: [127.0.0.1:1]\n', 'config: /c.yaml: nbd: expected a string or number, got a list'],
    ['nbd:\n', 'config: /c.yaml: nbd: expected a string or number, got an empty value'],
    ['api: {host: x}\n', 'got a mapping'],
    ['log-level: true\n', 'got true'],
    ['disk: [[a]]\n', 'config: /c.yaml: disk: expected a string or number, got a list'],
    ['nbd: 127.0.0.1:nope\n', 'config: /c.yaml: nbd="127.0.0.1:nope": expected HOST:PORT'],
    ['- just\n- a list\n', 'config: /c.yaml: expected a mapping of settings'],
    ['nbd: "unterminated\n', 'config: /c.yaml: invalid YAML at line'],
    ['nbd: 127.0.0.1:1\nnbd: 127.0.0.1:2\n', 'config: /c.yaml: invalid YAML at line 2'],
  ];
  for (const [text, message] of cases) {
    const err = refusal(['--config', '/c.yaml'], {}, { '/c.yaml': text });
    t.equal(err.code, 'CONFIG_INVALID', message);
    t.ok(err.message.startsWith(message) || err.message.includes(message), `${JSON.stringify(text)} → ${err.message}`);
  }
});

t.test('an unreadable config file names where it was set', async (t) => {
  t.match(refusal([], { PLINTH_CONFIG: '/missing.yaml' }).message, /^config: PLINTH_CONFIG="\/missing.yaml": cannot read the config file: ENOENT/);
});

t.test('a huge config file is refused', async (t) => {
  const err = refusal(['--config', '/big.yaml'], {}, { '/big.yaml': `# ${'x'.repeat(2 * 1024 * 1024)}\n` });
  t.match(err.message, /larger than/);
});

t.test('a disk path may contain a colon when its tail is not a size', async (t) => {
  t.same(run(['--disk', '/dev/disk/by-path/pci-0000:00:1f.2-ata-1']).disks, [{ path: '/dev/disk/by-path/pci-0000:00:1f.2-ata-1' }]);
});

t.test('the example config in systemd/plinth.yaml is valid and says what the contract says', async (t) => {
  // dist/test/unit/daemon/config.test.js → the repository root.
  const example = readFileSync(new URL('../../../../systemd/plinth.yaml', import.meta.url), 'utf8');
  const config = run(['--config', '/etc/plinth/plinth.yaml'], {}, { '/etc/plinth/plinth.yaml': example });
  t.equal(config.dataDir, '/var/lib/plinth');
  t.same(config.api, { host: '127.0.0.1', port: 9700 });
  t.same(config.nbd, { host: '127.0.0.1', port: 10809 });
  t.same(config.disks, [{ path: '/var/lib/plinth/disks/disk0.img', sizeBytes: 64 * 1024 ** 3 }]);
  t.equal(config.join, null);
});

t.test('--label sets the zone and rack failure domains (flag, env, file)', async (t) => {
  t.same(run([]).labels, {}, 'no labels by default');
  t.same(run(['--label', 'zone=eu-1', '--label', 'rack=r4']).labels, { zone: 'eu-1', rack: 'r4' });
  t.same(run([], { PLINTH_LABEL: 'zone=z2, rack=r1' }).labels, { zone: 'z2', rack: 'r1' });
  t.same(run(['--config', '/c.yaml'], {}, { '/c.yaml': 'label: [zone=z3]\n' }).labels, { zone: 'z3' });
  t.match(refusal(['--label', 'planet=mars']).message, /--label="planet=mars": expected zone=NAME or rack=NAME/);
  t.match(refusal(['--label', 'zone=a', '--label', 'zone=b']).message, /the zone label is given twice/);
  t.equal(refusal(['--label', 'rack=']).code, 'CONFIG_INVALID');
});
