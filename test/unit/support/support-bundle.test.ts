import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import t from 'tap';
import { buildApiApp } from '../../../api/build-api-app.js';
import { PlinthError } from '../../../common/plinth-error.js';
import type { ClusterState } from '../../../daemon/state/cluster-state.js';
import { gatherSupportBundle, type SupportBundleModules } from '../../../daemon/support/support-bundle.js';
import type { SupportService } from '../../../daemon/support/support-service.js';
import { FakeControlPlane } from '../../helpers/fake-control-plane.js';

const TOKEN = 'support-test-token-0123456789abc';
const logger = pino({ level: 'silent' });

function stateOf(nodeIds: readonly string[]): ClusterState {
  const nodes = Object.fromEntries(nodeIds.map((id) => [id, { id }]));
  // Only what the bundle reads: node ids, and a volume whose CHAP secret must not appear.
  return { clusterId: 'c-1', nodes, volumes: { v: { name: 'v', chap: { user: 'u', secret: 'volume-chap-secret' } } } } as unknown as ClusterState;
}

function modules(overrides: Partial<SupportBundleModules> = {}): SupportBundleModules {
  return {
    clusterState: async () => ({ state: stateOf(['n1', 'n2', 'n3']), leaderId: 'n1', consistent: true }),
    localPart: async () => ({ nodeId: 'n1', files: { 'node.json': '{}\n', 'logs.jsonl': '{"msg":"local"}\n' } }),
    remotePart: async (nodeId) => ({ nodeId, files: { 'node.json': '{}\n', 'logs.jsonl': `{"msg":"leaked ${TOKEN} and volume-chap-secret"}\n` } }),
    secrets: (state) => [TOKEN, ...JSON.stringify(state).includes('volume-chap-secret') ? ['volume-chap-secret'] : []],
    logger,
    now: () => Date.UTC(2026, 10, 26),
    ...overrides,
  };
}

function listArchive(t: { teardown(fn: () => void): void }, archive: Buffer): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'plinth-support-unit-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'b.tar.gz'), archive);
  return execFileSync('tar', ['-tzf', join(dir, 'b.tar.gz')], { encoding: 'utf8' }).trim().split('\n');
}

const options = { nodeId: 'n1', sinceMs: 0, maxTotalLogBytes: 1 << 20, maxNodeLogBytes: 1 << 20 };

t.test('one directory per node, the cluster state and a manifest; secrets scrubbed from every file', async (t) => {
  const bundle = await gatherSupportBundle(options, modules());
  t.same(listArchive(t, bundle.archive), [
    'manifest.json', 'cluster.json',
    'n1/', 'n1/node.json', 'n1/logs.jsonl',
    'n2/', 'n2/node.json', 'n2/logs.jsonl',
    'n3/', 'n3/node.json', 'n3/logs.jsonl',
  ]);
  const raw = gunzipSync(bundle.archive).toString('utf8');
  t.notMatch(raw, TOKEN);
  t.notMatch(raw, 'volume-chap-secret');
  t.match(raw, 'leaked <redacted> and <redacted>');
  t.same(bundle.manifest.nodes.map((node) => [node.nodeId, node.status, node.source]), [['n1', 'ok', 'local'], ['n2', 'ok', 'peer'], ['n3', 'ok', 'peer']]);
});

t.test('a node that does not answer, or answers garbage, is listed as unreachable; the bundle still succeeds', async (t) => {
  const bundle = await gatherSupportBundle(options, modules({
    remotePart: async (nodeId) => {
      if (nodeId === 'n2') throw new PlinthError('IO_ERROR', 'connection refused');
      return { nodeId, files: { '../../etc/passwd': 'x' } };
    },
  }));
  t.same(bundle.manifest.nodes.map((node) => [node.nodeId, node.status, node.error?.code]), [
    ['n1', 'ok', undefined], ['n2', 'unreachable', 'IO_ERROR'], ['n3', 'unreachable', 'PROTOCOL_ERROR'],
  ]);
  t.same(listArchive(t, bundle.archive), ['manifest.json', 'cluster.json', 'n1/', 'n1/node.json', 'n1/logs.jsonl']);
});

t.test('log bytes are split between nodes within the total bound', async (t) => {
  const asked: number[] = [];
  await gatherSupportBundle({ ...options, maxTotalLogBytes: 3 * 200_000 }, modules({
    localPart: async (_since, maxLogBytes) => {
      asked.push(maxLogBytes);
      return { nodeId: 'n1', files: {} };
    },
    remotePart: async (nodeId, _since, maxLogBytes) => {
      asked.push(maxLogBytes);
      return { nodeId, files: {} };
    },
  }));
  t.same(asked, [200_000, 200_000, 200_000]);
});

t.test('REST: /v1/support/bundle streams the archive with the node statuses; /v1/support/node answers JSON; both need the token', async (t) => {
  const calls: number[] = [];
  const support: SupportService = {
    nodePart: async (request) => {
      calls.push(request.sinceMs);
      return { nodeId: 'n1', files: { 'node.json': '{}' } };
    },
    bundle: async (request) => {
      calls.push(request.sinceMs);
      return gatherSupportBundle(options, modules());
    },
  };
  const app = await buildApiApp({ token: TOKEN, version: 't', logger }, { control: new FakeControlPlane(), metrics: new Registry(), support });
  t.teardown(() => app.close());
  const auth = { authorization: `Bearer ${TOKEN}` };
  t.equal((await app.inject({ method: 'GET', url: '/v1/support/bundle' })).statusCode, 401);
  const bundle = await app.inject({ method: 'GET', url: '/v1/support/bundle?since=2h', headers: auth });
  t.equal(bundle.statusCode, 200);
  t.equal(bundle.headers['content-type'], 'application/gzip');
  t.match(String(bundle.headers['content-disposition']), /attachment; filename="plinth-support-.*\.tar\.gz"/);
  t.same(JSON.parse(String(bundle.headers['x-plinth-support-nodes'])), [{ nodeId: 'n1', status: 'ok' }, { nodeId: 'n2', status: 'ok' }, { nodeId: 'n3', status: 'ok' }]);
  t.ok(listArchive(t, bundle.rawPayload).includes('cluster.json'));
  const since = calls[0] ?? 0;
  t.ok(Math.abs(Date.now() - 2 * 3_600_000 - since) < 5000, '--since 2h became a time two hours ago');
  const node = await app.inject({ method: 'GET', url: '/v1/support/node', headers: auth });
  t.same(node.json(), { nodeId: 'n1', files: { 'node.json': '{}' } });
  const bad = await app.inject({ method: 'GET', url: '/v1/support/bundle?since=yesterday', headers: auth });
  t.equal(bad.statusCode, 400);
  const spec = (await app.inject({ method: 'GET', url: '/docs/json' })).json() as { paths: Record<string, { get?: { security?: unknown } }> };
  for (const path of ['/v1/support/bundle', '/v1/support/node']) t.ok(spec.paths[path]?.get?.security, `${path} is in the OpenAPI document, with its security`);
});
