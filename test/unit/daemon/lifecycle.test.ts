import { mkdtemp, readFile, rm, stat, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import t from 'tap';
import { ensureApiToken } from '../../../daemon/lifecycle/api-token.js';
import { decideNodeId, loadNodeId } from '../../../daemon/lifecycle/node-identity.js';
import { openNodeDatabase } from '../../../daemon/lifecycle/open-database.js';
import { ShutdownStack } from '../../../daemon/lifecycle/shutdown-stack.js';
import { KeyedMutex } from '../../../daemon/control/keyed-mutex.js';

const logger = pino({ level: 'silent' });

async function tempDir(t: { teardown(fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'plinth-life-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const base = { configured: null, configuredSource: '--node-id', persisted: null, hostname: 'host-1', dataDir: '/d' };

t.test('decideNodeId', async (t) => {
  t.same(decideNodeId(base), { nodeId: 'host-1', persist: true }, 'first start: the hostname');
  t.same(decideNodeId({ ...base, configured: 'n1' }), { nodeId: 'n1', persist: true }, 'first start: the configured id');
  t.same(decideNodeId({ ...base, persisted: 'n1' }), { nodeId: 'n1', persist: false }, 'later: the stored id');
  t.same(decideNodeId({ ...base, persisted: 'n1', configured: 'n1' }), { nodeId: 'n1', persist: false }, 'later: the same id is fine');
  t.throws(() => decideNodeId({ ...base, persisted: 'n1', configured: 'n2', configuredSource: 'PLINTH_NODE_ID' }), {
    code: 'CONFIG_INVALID',
    message: 'config: PLINTH_NODE_ID="n2": data dir /d belongs to node "n1"; a node id cannot change (drop the setting or use another data dir)',
  });
  t.throws(() => decideNodeId({ ...base, hostname: '' }), { code: 'CONFIG_INVALID', message: /the hostname "" is not a valid node id; set --node-id/ });
  t.throws(() => decideNodeId({ ...base, persisted: 'bad id' }), { code: 'CONFIG_INVALID', message: /holds an invalid node id/ });
});

t.test('loadNodeId persists on first start only', async (t) => {
  const dataDir = await tempDir(t);
  t.equal(await loadNodeId({ configured: null, configuredSource: '--node-id', hostname: 'h1', dataDir }), 'h1');
  t.equal(await readFile(join(dataDir, 'node-id'), 'utf8'), 'h1\n');
  t.equal(await loadNodeId({ configured: null, configuredSource: '--node-id', hostname: 'renamed-host', dataDir }), 'h1', 'a renamed host keeps its id');
  await t.rejects(loadNodeId({ configured: 'other', configuredSource: '--node-id', hostname: 'h1', dataDir }), { code: 'CONFIG_INVALID' });
});

t.test('ensureApiToken creates a 0600 token once', async (t) => {
  const dataDir = await tempDir(t);
  const token = await ensureApiToken(dataDir, { logger, randomBytes: (size) => Buffer.alloc(size, 0xab) });
  t.equal(token, 'ab'.repeat(32));
  t.equal((await stat(join(dataDir, 'api-token'))).mode & 0o777, 0o600);
  t.equal(await ensureApiToken(dataDir, { logger }), token, 'an existing token is kept');
  await writeFile(join(dataDir, 'api-token'), 'short\n');
  await t.rejects(ensureApiToken(dataDir, { logger }), { code: 'CONFIG_INVALID', message: /does not hold a usable API token/ });
});

t.test('ensureApiToken warns about a world-readable token', async (t) => {
  const dataDir = await tempDir(t);
  await writeFile(join(dataDir, 'api-token'), `${'c'.repeat(64)}\n`);
  await chmod(join(dataDir, 'api-token'), 0o644);
  const lines: string[] = [];
  const capture = pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) });
  t.equal(await ensureApiToken(dataDir, { logger: capture }), 'c'.repeat(64));
  t.match(lines.join(''), /readable by other users; chmod 600 it/);
});

t.test('the database lock refuses a second opener with DATA_DIR_LOCKED', async (t) => {
  const dataDir = join(await tempDir(t), 'nested', 'data');
  const db = await openNodeDatabase(dataDir);
  await t.rejects(openNodeDatabase(dataDir), { code: 'DATA_DIR_LOCKED', message: `data dir ${dataDir} is in use by another plinthd` });
  await db.close();
  const again = await openNodeDatabase(dataDir);
  await again.close();
});

t.test('ShutdownStack closes in reverse, keeps going past failures, runs once', async (t) => {
  const order: string[] = [];
  const stack = new ShutdownStack(logger);
  stack.push('db', async () => void order.push('db'));
  stack.push('pool', async () => {
    order.push('pool');
    throw new Error('disk gone');
  });
  stack.push('api', async (signal) => void order.push(`api aborted=${signal.aborted}`));
  const controller = new AbortController();
  controller.abort();
  await t.rejects(stack.closeAll(controller.signal), { message: 'disk gone' });
  t.same(order, ['api aborted=true', 'pool', 'db']);
  await t.rejects(stack.closeAll(controller.signal), { message: 'disk gone' });
  t.equal(order.length, 3, 'a second close does not rerun closers');
});

t.test('KeyedMutex serialises per key and not across keys', async (t) => {
  const mutex = new KeyedMutex();
  const events: string[] = [];
  let releaseFirst = (): void => undefined;
  const first = mutex.run('a', () => new Promise<void>((resolve) => {
    events.push('a1 start');
    releaseFirst = () => {
      events.push('a1 end');
      resolve();
    };
  }));
  const second = mutex.run('a', async () => void events.push('a2'));
  const other = mutex.run('b', async () => void events.push('b1'));
  await other;
  t.same(events, ['a1 start', 'b1'], 'b does not wait for a');
  releaseFirst();
  await Promise.all([first, second]);
  t.same(events, ['a1 start', 'b1', 'a1 end', 'a2']);
  await t.rejects(mutex.run('a', async () => Promise.reject(new Error('boom'))), { message: 'boom' });
  t.equal(await mutex.run('a', async () => 42), 42, 'a failure does not wedge the key');
});
