import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { runCli, type CliIo } from '../../../api/cli/run-cli.js';
import { closedLoopbackPort, listenTestApp, TEST_TOKEN } from './api-fixture.js';

interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function plinth(argv: readonly string[], env: CliIo['env'] = {}, cwd = '/nonexistent-cwd'): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(argv, {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
    env,
    cwd,
  });
  return { code, stdout, stderr };
}

async function writeTokenFile(dir: string, token: string): Promise<void> {
  await writeFile(join(dir, 'api-token'), `${token}\n`, { mode: 0o600 });
}

async function tempDataDir(t: { teardown(fn: () => unknown): void }, token: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'plinth-cli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeTokenFile(dir, token);
  return dir;
}

t.test('volume lifecycle with human output: tables, key-value lines, exit 0', async (t) => {
  const { baseUrl } = await listenTestApp(t);
  const run = (...args: string[]) => plinth(['--api', baseUrl, '--token', TEST_TOKEN, ...args]);

  const created = await run('volume', 'create', 'db1', '--size', '10GiB', '--replicas', '2');
  t.same(created, { code: 0, stdout: 'created volume db1: 10GiB, 2 replicas\n', stderr: '' });
  t.equal((await run('volume', 'create', 'web', '--size', '536870912')).code, 0);
  t.equal((await run('volume', 'attach', 'db1', '--node', 'node-2')).stdout, 'attached volume db1 to node-2 (generation 1)\n');

  const list = await run('volume', 'ls');
  t.equal(list.code, 0);
  t.equal(list.stdout, [
    'NAME   SIZE     REPLICAS   STATE     ATTACHED   USED',
    'db1    10GiB    2/2        healthy   node-2     0B',
    'web    512MiB   1/1        healthy   -          0B',
    '',
  ].join('\n'));

  const inspect = await run('volume', 'inspect', 'db1');
  t.equal(inspect.code, 0);
  t.match(inspect.stdout, /^name: +db1$/m);
  t.match(inspect.stdout, /^size: +10GiB \(10737418240 bytes\)$/m);
  t.match(inspect.stdout, /^attached: +node-2$/m);

  t.equal((await run('volume', 'grow', 'db1', '--size', '12GiB')).stdout, 'resized volume db1 to 12GiB\n');
  t.equal((await run('volume', 'resize', 'db1', '--size', '13GiB')).code, 0);
  t.equal((await run('volume', 'detach', 'db1', '--force')).stdout, 'detached volume db1\n');
  t.equal((await run('volume', 'rm', 'db1')).stdout, 'removed volume db1\n');

  const nodes = await run('node', 'ls');
  t.match(nodes.stdout, /^ID +STATE +LEADER/);
  t.match(nodes.stdout, /^node-1 +up +yes/m);
  const cluster = await run('cluster', 'status');
  t.match(cluster.stdout, /^cluster: +cluster-test$/m);
  t.match(cluster.stdout, /^volumes: +1$/m);
});

t.test('--json prints the raw JSON everywhere', async (t) => {
  const { baseUrl } = await listenTestApp(t);
  const run = (...args: string[]) => plinth(['--json', '--api', baseUrl, '--token', TEST_TOKEN, ...args]);
  const parse = (r: CliRun): unknown => {
    t.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout);
  };
  t.match(parse(await run('volume', 'create', 'db1', '--size', '1GiB')), { name: 'db1', sizeBytes: 1024 ** 3 });
  t.match(parse(await run('volume', 'ls')), { volumes: [{ name: 'db1' }] });
  t.match(parse(await run('volume', 'inspect', 'db1')), { name: 'db1', replicas: [{ nodeId: 'node-1' }] });
  t.match(parse(await run('volume', 'attach', 'db1', '--node', 'node-1')), { attachedTo: 'node-1' });
  t.match(parse(await run('volume', 'detach', 'db1')), { attachedTo: null });
  t.same(parse(await run('volume', 'rm', 'db1')), { name: 'db1', deleted: true });
  t.match(parse(await run('node', 'ls')), { nodes: [{ id: 'node-1' }, { id: 'node-2' }, { id: 'node-3' }] });
  t.match(parse(await run('cluster', 'status')), { clusterId: 'cluster-test' });
});

t.test('API and connection errors exit 1 with one message on stderr (API errors add the request id)', async (t) => {
  const { baseUrl } = await listenTestApp(t);
  const run = (...args: string[]) => plinth(['--api', baseUrl, '--token', TEST_TOKEN, ...args]);
  // API errors name the invocation's request id (sent as x-request-id) so the operator can grep the daemons' logs.
  const notFound = await run('volume', 'inspect', 'db1');
  t.same({ code: notFound.code, stdout: notFound.stdout }, { code: 1, stdout: '' });
  t.match(notFound.stderr, /^plinth: volume "db1" not found \(VOLUME_NOT_FOUND\)\nrequest id: [0-9a-f-]{36}\n$/);
  const badSize = await run('volume', 'create', 'x', '--size', '10GB');
  t.equal(badSize.code, 1);
  t.match(badSize.stderr, /^plinth: invalid size "10GB".*\(INVALID_SIZE\)\nrequest id: [0-9a-f-]{36}\n$/);
  t.not(badSize.stderr.split('request id: ')[1], notFound.stderr.split('request id: ')[1], 'a fresh id per invocation');
  const badToken = await plinth(['--api', baseUrl, '--token', 'wrong', 'volume', 'ls']);
  t.equal(badToken.code, 1);
  t.match(badToken.stderr, /<data-dir>\/api-token.*\(UNAUTHORIZED\)/);

  const port = await closedLoopbackPort();
  const refused = await plinth(['--api', `http://127.0.0.1:${port}`, '--token', TEST_TOKEN, 'volume', 'ls']);
  t.same(refused, {
    code: 1, stdout: '', stderr: `plinth: cannot reach plinthd at http://127.0.0.1:${port}: ECONNREFUSED — is the daemon running?\n`,
  });
});

t.test('usage errors exit 2 with the usage text; help and --version exit 0', async (t) => {
  const usageCases: string[][] = [
    [],
    ['frobnicate'],
    ['volume'],
    ['volume', 'explode'],
    ['volume', 'create', 'db1'],
    ['volume', 'create', '--size', '1GiB'],
    ['volume', 'ls', 'extra'],
    ['volume', 'ls', '--node', 'n1'],
    ['volume', 'create', 'db1', '--size', '1GiB', '--replicas', 'three'],
    ['volume', 'attach', 'db1'],
    ['--bogus', 'volume', 'ls'],
    ['--token', 'a', '--data-dir', '/tmp', 'volume', 'ls'],
    ['--api', 'ftp://example', '--token', 'a', 'volume', 'ls'],
  ];
  for (const argv of usageCases) {
    const result = await plinth(argv);
    t.equal(result.code, 2, argv.join(' '));
    t.equal(result.stdout, '', argv.join(' '));
    t.match(result.stderr, /^plinth: .+\n\nUsage: plinth /, argv.join(' '));
  }
  for (const argv of [['help'], ['--help'], ['-h'], ['volume', 'help']]) {
    const result = await plinth(argv);
    t.equal(result.code, 0, argv.join(' '));
    t.match(result.stdout, /^Usage: plinth .*volume resize NAME --size SIZE/s);
  }
  const version = await plinth(['--version']);
  t.equal(version.code, 0);
  t.match(version.stdout, /^plinth \d+\.\d+\.\d+/);
});

t.test('the token is found via --data-dir, PLINTH_DATA_DIR, PLINTH_TOKEN or ./data', async (t) => {
  const { baseUrl } = await listenTestApp(t);
  const dataDir = await tempDataDir(t, TEST_TOKEN);

  const viaFlag = await plinth(['--api', baseUrl, '--data-dir', dataDir, 'volume', 'ls']);
  t.equal(viaFlag.code, 0, viaFlag.stderr);
  t.match(viaFlag.stdout, /^NAME +SIZE/);

  const viaEnvDir = await plinth(['volume', 'ls'], { PLINTH_API: baseUrl, PLINTH_DATA_DIR: dataDir });
  t.equal(viaEnvDir.code, 0, viaEnvDir.stderr);

  const viaEnvToken = await plinth(['volume', 'ls'], { PLINTH_API: baseUrl, PLINTH_TOKEN: TEST_TOKEN });
  t.equal(viaEnvToken.code, 0, viaEnvToken.stderr);

  const cwd = await mkdtemp(join(tmpdir(), 'plinth-cwd-'));
  t.teardown(() => rm(cwd, { recursive: true, force: true }));
  await mkdir(join(cwd, 'data'));
  await writeTokenFile(join(cwd, 'data'), TEST_TOKEN);
  const viaDefault = await plinth(['--api', baseUrl, 'volume', 'ls'], {}, cwd);
  t.equal(viaDefault.code, 0, `./data/api-token relative to cwd: ${viaDefault.stderr}`);

  const flagBeatsEnv = await plinth(['--api', baseUrl, '--token', 'wrong', 'volume', 'ls'], { PLINTH_TOKEN: TEST_TOKEN });
  t.equal(flagBeatsEnv.code, 1, '--token wins over PLINTH_TOKEN');

  const missing = await plinth(['--api', baseUrl, '--data-dir', join(dataDir, 'nope'), 'volume', 'ls']);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /^plinth: no API token: .*nope\/api-token does not exist; pass --data-dir/);
});
