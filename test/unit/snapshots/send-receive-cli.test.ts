import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import t, { type Test } from 'tap';
import { runCli } from '../../../api/cli/run-cli.js';
import { EXTENT_BYTES, MemoryCluster } from './helpers/memory-cluster.js';

/**
 * The CLI commands of issue 8 against the real routes over loopback HTTP
 * (in-process clusters): `volume send --output FILE`, `volume receive
 * --input FILE`, `volume receive-status`, `--abort`, `snapshot schedule`,
 * and their usage errors.
 */

async function plinth(baseUrl: string, argv: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(['--api', baseUrl, '--token', 'unused-by-this-app', ...argv], {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
    env: {},
    cwd: '/nonexistent-cwd',
  });
  return { code, stdout, stderr };
}

async function listen(t: Test, cluster: MemoryCluster): Promise<string> {
  const app = await cluster.buildApp();
  t.teardown(() => app.close());
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('expected a TCP address');
  return `http://127.0.0.1:${address.port}`;
}

t.test('send to a file, receive from it, status, abort, schedule', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'plinth-send-cli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const a = new MemoryCluster('cluster-a');
  const b = new MemoryCluster('cluster-b');
  a.createVolume('db', 8 * EXTENT_BYTES);
  const store = await a.pool.openVolume(a.volume('db').id, 8 * EXTENT_BYTES);
  await store.write(EXTENT_BYTES, Buffer.alloc(EXTENT_BYTES, 0x42));
  await store.close();
  await a.createSnapshot('db', 's1');
  const [urlA, urlB] = [await listen(t, a), await listen(t, b)];

  const file = join(dir, 'db-s1.plsend');
  const sent = await plinth(urlA, ['volume', 'send', 'db@s1', '--output', file]);
  t.equal(sent.code, 0, sent.stderr);
  t.match(sent.stdout, /sent db@s1 to .*db-s1\.plsend: \d+ bytes, 1 chunks/);
  t.equal((await readFile(file)).subarray(0, 6).toString('latin1'), 'PLSEND');

  const cut = join(dir, 'cut.plsend');
  const bytes = await readFile(file);
  await writeFile(cut, bytes.subarray(0, bytes.length - 10));
  const truncated = await plinth(urlB, ['volume', 'receive', 'copy', '--input', cut]);
  t.equal(truncated.code, 1);
  t.match(truncated.stderr, /STREAM_TRUNCATED/);
  const status = await plinth(urlB, ['volume', 'receive-status', 'copy']);
  t.match(status.stdout, /receiving: +db@s1 from cluster cluster-a/);
  const aborted = await plinth(urlB, ['volume', 'receive', 'copy', '--abort']);
  t.equal(aborted.code, 0, aborted.stderr);
  t.match((await plinth(urlB, ['volume', 'receive-status', 'copy'])).stderr, /VOLUME_NOT_FOUND/, 'the aborted full receive left no volume');

  const received = await plinth(urlB, ['--json', 'volume', 'receive', 'copy', '--input', file, '--replicas', '2']);
  t.equal(received.code, 0, received.stderr);
  t.match(JSON.parse(received.stdout), { volume: 'copy', snapshot: 's1', chunkCount: 1 });
  t.ok((await b.content('copy')).equals(await a.content('db')));

  const scheduled = await plinth(urlA, ['snapshot', 'schedule', 'db', '--every', '1h', '--keep', '24']);
  t.equal(scheduled.stdout, 'db: a snapshot every 1h, keeping the newest 24\n');
  t.equal((await plinth(urlA, ['snapshot', 'schedule', 'db'])).stdout, 'db: a snapshot every 1h, keeping the newest 24\n');
  t.equal((await plinth(urlA, ['snapshot', 'schedule', 'db', '--off'])).stdout, 'db: no snapshot schedule\n');
  t.same(a.volume('db').snapshotSchedule, undefined);

  t.equal((await plinth(urlA, ['snapshot', 'schedule', 'db', '--every', '1h'])).code, 2, 'both or neither');
  t.equal((await plinth(urlA, ['snapshot', 'schedule', 'db', '--every', 'soon', '--keep', '1'])).code, 2);
  t.equal((await plinth(urlA, ['volume', 'send', 'db', '--output', file])).code, 2, 'VOLUME@SNAPSHOT');
  t.equal((await plinth(urlA, ['volume', 'send', 'db@s1', '--from-chunk', 'x', '--output', file])).code, 2);
  t.equal((await plinth(urlB, ['volume', 'receive', 'x', '--abort', '--resume'])).code, 2);
});
