import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { PlinthClient } from '../../../api/client/plinth-client.js';
import { runCli } from '../../../api/cli/run-cli.js';
import type { VolumeView } from '../../../daemon/control-plane.js';
import { AUTH_HEADERS, buildTestApp, errorOf, listenTestApp, TEST_TOKEN } from './api-fixture.js';

/** PUT/DELETE /v1/volumes/{name}/chap, the client and `plinth volume chap` (docs/api.md, docs/iscsi.md "CHAP"). */

const SECRET = 'initiator-secret-1';
const TARGET_SECRET = 'target-secret-22';

function chapOf(body: unknown): VolumeView['chap'] {
  if (typeof body !== 'object' || body === null || !('chap' in body)) throw new Error(`not a volume view: ${JSON.stringify(body)}`);
  return (body as VolumeView).chap;
}

t.test('PUT sets, GET shows user and mutual only, DELETE clears', async (t) => {
  const { app, control } = await buildTestApp();
  t.teardown(() => app.close());
  await control.createVolume({ name: 'db1', sizeBytes: 1024 ** 3 });
  const call = async (method: 'GET' | 'PUT' | 'DELETE', url: string, payload?: object) =>
    app.inject({ method, url, headers: AUTH_HEADERS, ...(payload === undefined ? {} : { payload }) });

  t.equal(chapOf((await call('GET', '/v1/volumes/db1')).json()), null, 'no per-volume CHAP: null');
  const set = await call('PUT', '/v1/volumes/db1/chap', { user: 'alice', secret: SECRET, targetUser: 'plinth', targetSecret: TARGET_SECRET });
  t.equal(set.statusCode, 200, set.body);
  t.same(chapOf(set.json()), { user: 'alice', mutual: true });
  t.same(control.chapRequests.get('db1'), { user: 'alice', secret: SECRET, targetUser: 'plinth', targetSecret: TARGET_SECRET }, 'the control plane got all four');
  for (const url of ['/v1/volumes/db1', '/v1/volumes']) {
    const body = (await call('GET', url)).body;
    t.notOk(body.includes(SECRET) || body.includes(TARGET_SECRET), `GET ${url} never shows a secret`);
  }
  t.notOk(set.body.includes(SECRET), 'nor does the PUT answer');

  const cleared = await call('DELETE', '/v1/volumes/db1/chap');
  t.equal(cleared.statusCode, 200);
  t.equal(chapOf(cleared.json()), null);
  t.equal((await call('DELETE', '/v1/volumes/nope/chap')).statusCode, 404);
});

t.test('bodies are checked at the edge', async (t) => {
  const { app, control } = await buildTestApp();
  t.teardown(() => app.close());
  await control.createVolume({ name: 'db1', sizeBytes: 1024 ** 3 });
  const put = async (payload: object) => app.inject({ method: 'PUT', url: '/v1/volumes/db1/chap', headers: AUTH_HEADERS, payload });
  for (const payload of [{ user: 'alice' }, { secret: SECRET }, { user: 'alice', secret: SECRET, extra: 1 }, { user: '', secret: SECRET }, { user: 'alice', secret: 'x'.repeat(256) }]) {
    const response = await put(payload);
    t.equal(response.statusCode, 400, JSON.stringify(payload));
    t.notOk(response.body.includes(SECRET), 'the refusal does not echo the secret');
  }
  t.equal(errorOf(await app.inject({ method: 'PUT', url: '/v1/volumes/nope/chap', headers: AUTH_HEADERS, payload: { user: 'a', secret: SECRET } })).code, 'VOLUME_NOT_FOUND');
  t.equal((await app.inject({ method: 'PUT', url: '/v1/volumes/db1/chap', payload: { user: 'a', secret: SECRET } })).statusCode, 401, 'bearer auth like every route');
});

t.test('the response schema drops any field but user and mutual, even if a view carried one', async (t) => {
  const { app, control } = await buildTestApp();
  t.teardown(() => app.close());
  const view = await control.createVolume({ name: 'db1', sizeBytes: 1024 ** 3 });
  const smuggled = { user: 'alice', mutual: false, secret: SECRET };
  control.volumes.set('db1', { ...view, chap: smuggled });
  const response = await app.inject({ method: 'GET', url: '/v1/volumes/db1', headers: AUTH_HEADERS });
  t.same(chapOf(response.json()), { user: 'alice', mutual: false });
  t.notOk(response.body.includes(SECRET));
});

t.test('client and CLI: secrets from files, --clear, usage errors', async (t) => {
  const { baseUrl, control } = await listenTestApp(t);
  await control.createVolume({ name: 'db1', sizeBytes: 1024 ** 3 });
  const client = new PlinthClient({ baseUrl, token: TEST_TOKEN });
  t.same((await client.setVolumeChap('db1', { user: 'alice', secret: SECRET })).chap, { user: 'alice', mutual: false });
  t.equal((await client.clearVolumeChap('db1')).chap, null);

  const dir = await mkdtemp(join(tmpdir(), 'plinth-cli-chap-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'secret'), `${SECRET}\n`, { mode: 0o600 });
  await writeFile(join(dir, 'target-secret'), TARGET_SECRET, { mode: 0o600 });
  const plinth = async (...args: string[]) => {
    let stdout = '';
    let stderr = '';
    const code = await runCli(['--api', baseUrl, '--token', TEST_TOKEN, ...args], {
      stdout: { write: (text: string) => (stdout += text) },
      stderr: { write: (text: string) => (stderr += text) },
      env: {},
      cwd: dir,
    });
    return { code, stdout, stderr };
  };

  const set = await plinth('volume', 'chap', 'db1', '--user', 'alice', '--secret-file', join(dir, 'secret'), '--target-user', 'plinth', '--target-secret-file', join(dir, 'target-secret'));
  t.same(set, { code: 0, stdout: 'volume db1: iSCSI CHAP set (user alice, mutual)\n', stderr: '' });
  t.same(control.chapRequests.get('db1'), { user: 'alice', secret: SECRET, targetUser: 'plinth', targetSecret: TARGET_SECRET }, 'the trailing newline is not part of the secret');
  t.match((await plinth('volume', 'inspect', 'db1')).stdout, /^iscsi chap: +user alice, mutual$/m);
  const json = await plinth('--json', 'volume', 'chap', 'db1', '--clear');
  t.equal(json.code, 0);
  t.same(JSON.parse(json.stdout).chap, null);
  t.match((await plinth('volume', 'inspect', 'db1')).stdout, /^iscsi chap: +cluster-wide settings$/m);

  const usage: string[][] = [
    ['volume', 'chap', 'db1'],
    ['volume', 'chap', 'db1', '--user', 'alice'],
    ['volume', 'chap', 'db1', '--user', 'alice', '--secret-file', join(dir, 'secret'), '--target-user', 'p'],
    ['volume', 'chap', 'db1', '--clear', '--user', 'alice'],
    ['volume', 'create', 'x', '--size', '1GiB', '--user', 'alice'],
  ];
  for (const argv of usage) t.equal((await plinth(...argv)).code, 2, argv.join(' '));
  const missing = await plinth('volume', 'chap', 'db1', '--user', 'alice', '--secret-file', join(dir, 'absent'));
  t.equal(missing.code, 1);
  t.match(missing.stderr, /--secret-file .*absent: ENOENT/);
});
