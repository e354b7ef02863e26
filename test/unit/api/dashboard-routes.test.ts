import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import {
  CONTENT_TYPE_BY_EXTENSION, DASHBOARD_FILES, defaultDashboardAssetDir, loadDashboardAssets,
} from '../../../api/dashboard/dashboard-assets.js';
import { DASHBOARD_CONTENT_SECURITY_POLICY } from '../../../api/dashboard/security-headers.js';
import { buildTestApp, errorOf } from './api-fixture.js';

/** The dashboard's static file handler (api/dashboard/dashboard-routes.ts, issue 6). */

t.test('GET /ui/ serves the page with the security headers and no token', async (t) => {
  const { app } = await buildTestApp();
  t.teardown(() => app.close());
  const response = await app.inject({ method: 'GET', url: '/ui/' });
  t.equal(response.statusCode, 200);
  t.equal(response.headers['content-type'], 'text/html; charset=utf-8');
  const csp = String(response.headers['content-security-policy']);
  t.equal(csp, DASHBOARD_CONTENT_SECURITY_POLICY);
  t.match(csp, /default-src 'self'/);
  t.match(csp, /frame-ancestors 'none'/);
  t.notMatch(csp, /unsafe-inline|unsafe-eval/);
  t.equal(response.headers['x-content-type-options'], 'nosniff');
  t.equal(response.headers['x-frame-options'], 'DENY');
  t.equal(response.headers['cache-control'], 'no-cache');
  t.match(String(response.headers['etag']), /^"[A-Za-z0-9_-]+"$/);
  t.match(response.body, /<script type="module" src="app.js"><\/script>/);
  // Every script tag loads a file: the CSP forbids inline code, so none may exist.
  for (const tag of response.body.match(/<script[^>]*>/g) ?? []) t.match(tag, / src="/, `no inline script: ${tag}`);
  t.notMatch(response.body, / on[a-z]+="/, 'no inline event handlers');
  t.notMatch(response.body, / style="/, 'no inline styles');
});

t.test('every allow-listed file is served with its content type; the list matches the folder', async (t) => {
  const { app } = await buildTestApp();
  t.teardown(() => app.close());
  for (const fileName of DASHBOARD_FILES) {
    const response = await app.inject({ method: 'GET', url: `/ui/${fileName}` });
    t.equal(response.statusCode, 200, fileName);
    const extension = fileName.slice(fileName.lastIndexOf('.'));
    t.equal(response.headers['content-type'], CONTENT_TYPE_BY_EXTENSION[extension], `${fileName} content type`);
    t.equal(response.headers['x-content-type-options'], 'nosniff', `${fileName} nosniff`);
    t.ok(response.body.length > 0, `${fileName} has content`);
  }
  const onDisk = (await readdir(defaultDashboardAssetDir())).filter((name) => !name.endsWith('.d.ts')).sort();
  t.same(onDisk, [...DASHBOARD_FILES].sort(), 'a new file in api/dashboard/public/ must be added to DASHBOARD_FILES');
});

t.test('traversal and unknown names get a 404 that leaks nothing', async (t) => {
  const { app } = await buildTestApp();
  t.teardown(() => app.close());
  const attempts = [
    '/ui/../package.json',
    '/ui/..%2f..%2f..%2fpackage.json',
    '/ui/%2e%2e/%2e%2e/%2e%2e/package.json',
    '/ui/.%2e/.%2e/.%2e/package.json',
    '/ui/..\\..\\..\\package.json',
    '/ui/%2fetc%2fpasswd',
    '/ui//etc/passwd',
    '/ui/public/app.js',
    '/ui/app.js%00.html',
    '/ui/APP.JS',
    '/ui/dashboard-routes.js',
    '/ui/missing.html',
    `/ui/${'a'.repeat(5000)}.js`,
  ];
  for (const url of attempts) {
    const label = url.length > 60 ? `${url.slice(0, 60)}…` : url;
    const response = await app.inject({ method: 'GET', url });
    t.equal(response.statusCode, 404, label);
    t.notMatch(response.body, /"dependencies"|root:x:0/, `${label} leaks no file`);
    t.ok(response.body.length < 500, `${label}: the message is bounded`);
    t.equal(errorOf(response).code, 'NOT_FOUND', `${label}: a JSON NOT_FOUND`);
  }
  const dashboard404 = await app.inject({ method: 'GET', url: '/ui/missing.html' });
  t.equal(dashboard404.headers['content-security-policy'], DASHBOARD_CONTENT_SECURITY_POLICY, 'errors carry the headers too');
});

t.test('redirects: / and /ui go to /ui/', async (t) => {
  const { app } = await buildTestApp();
  t.teardown(() => app.close());
  const root = await app.inject({ method: 'GET', url: '/' });
  t.equal(root.statusCode, 302);
  t.equal(root.headers['location'], '/ui/');
  const ui = await app.inject({ method: 'GET', url: '/ui' });
  t.equal(ui.statusCode, 301);
  t.equal(ui.headers['location'], '/ui/');
});

t.test('a matching If-None-Match gets 304; HEAD works; /v1 still needs the token', async (t) => {
  const { app } = await buildTestApp();
  t.teardown(() => app.close());
  const first = await app.inject({ method: 'GET', url: '/ui/style.css' });
  const etag = String(first.headers['etag']);
  const again = await app.inject({ method: 'GET', url: '/ui/style.css', headers: { 'if-none-match': etag } });
  t.equal(again.statusCode, 304);
  t.equal(again.body, '');
  const stale = await app.inject({ method: 'GET', url: '/ui/style.css', headers: { 'if-none-match': '"other"' } });
  t.equal(stale.statusCode, 200);
  const head = await app.inject({ method: 'HEAD', url: '/ui/app.js' });
  t.equal(head.statusCode, 200);
  t.equal(head.headers['content-type'], 'text/javascript; charset=utf-8');
  const api = await app.inject({ method: 'GET', url: '/v1/cluster' });
  t.equal(api.statusCode, 401);
  const openApi = await app.inject({ method: 'GET', url: '/docs/json' });
  t.notMatch(openApi.body, /"\/ui\//, 'the dashboard routes stay out of the OpenAPI document');
});

t.test('loading refuses a missing file, an unknown type and an oversized file', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'plinth-dashboard-assets-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await t.rejects(loadDashboardAssets(dir, ['index.html']), { code: 'CONFIG_INVALID' });
  await writeFile(join(dir, 'notes.txt'), 'x');
  await t.rejects(loadDashboardAssets(dir, ['notes.txt']), { code: 'CONFIG_INVALID' });
  await writeFile(join(dir, 'huge.js'), Buffer.alloc(600 * 1024));
  await t.rejects(loadDashboardAssets(dir, ['huge.js']), { code: 'TOO_LARGE' });
  await writeFile(join(dir, 'ok.css'), 'body{}');
  const assets = await loadDashboardAssets(dir, ['ok.css']);
  t.equal(assets.get('ok.css')?.contentType, 'text/css; charset=utf-8');
});
