import t from 'tap';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { buildApiApp } from '../../../api/build-api-app.js';
import { FakeControlPlane } from '../../helpers/fake-control-plane.js';
import { AUTH_HEADERS, buildTestApp, errorOf, TEST_TOKEN } from './api-fixture.js';

const V1_ROUTES = [
  { method: 'GET', url: '/v1/cluster' },
  { method: 'GET', url: '/v1/nodes' },
  { method: 'GET', url: '/v1/volumes' },
  { method: 'POST', url: '/v1/volumes' },
  { method: 'GET', url: '/v1/volumes/db1' },
  { method: 'PATCH', url: '/v1/volumes/db1' },
  { method: 'DELETE', url: '/v1/volumes/db1' },
  { method: 'POST', url: '/v1/volumes/db1/attach' },
  { method: 'POST', url: '/v1/volumes/db1/detach' },
] as const;

t.test('every /v1 route refuses a missing token with a hint to <data-dir>/api-token', async (t) => {
  const { app, control } = await buildTestApp();
  t.teardown(() => app.close());
  for (const route of V1_ROUTES) {
    const response = await app.inject({ method: route.method, url: route.url, payload: { name: 'x', size: 1 } });
    t.equal(response.statusCode, 401, `${route.method} ${route.url}`);
    const error = errorOf(response);
    t.equal(error.code, 'UNAUTHORIZED');
    t.match(error.message, '<data-dir>/api-token');
    t.equal(response.headers['www-authenticate'], 'Bearer realm="plinth"');
  }
  t.equal(control.volumes.size, 0, 'nothing was created without a token');
});

t.test('wrong tokens are refused, whatever their length or scheme', async (t) => {
  const { app } = await buildTestApp();
  t.teardown(() => app.close());
  const wrong = [
    `Bearer ${TEST_TOKEN}x`,
    `Bearer ${TEST_TOKEN.slice(0, -1)}`,
    'Bearer a',
    `Basic ${TEST_TOKEN}`,
    TEST_TOKEN,
    'Bearer ',
    `Bearer ${'y'.repeat(2000)}`,
  ];
  for (const authorization of wrong) {
    const response = await app.inject({ url: '/v1/volumes', headers: { authorization } });
    t.equal(response.statusCode, 401, authorization.slice(0, 40));
    t.match(errorOf(response).message, '<data-dir>/api-token');
  }
  const missing = await app.inject({ url: '/v1/volumes' });
  t.match(errorOf(missing).message, /^missing API token/);
  const malformed = await app.inject({ url: '/v1/volumes', headers: { authorization: 'Bearer two words' } });
  t.match(errorOf(malformed).message, /^malformed Authorization header/);
});

t.test('the right token is accepted, with a case-insensitive scheme (RFC 6750 §2.1)', async (t) => {
  const { app } = await buildTestApp();
  t.teardown(() => app.close());
  t.equal((await app.inject({ url: '/v1/volumes', headers: AUTH_HEADERS })).statusCode, 200);
  t.equal((await app.inject({ url: '/v1/volumes', headers: { authorization: `bearer ${TEST_TOKEN}` } })).statusCode, 200);
});

t.test('auth runs before body parsing: garbage from strangers gets 401, not 400', async (t) => {
  const { app } = await buildTestApp();
  t.teardown(() => app.close());
  const response = await app.inject({
    method: 'POST', url: '/v1/volumes', headers: { 'content-type': 'application/json' }, payload: '{not json',
  });
  t.equal(response.statusCode, 401);
});

t.test('an empty token is a configuration error', async (t) => {
  await t.rejects(
    buildApiApp(
      { token: '', version: 'x', logger: pino({ level: 'silent' }) },
      { control: new FakeControlPlane(), metrics: new Registry() },
    ),
    { code: 'CONFIG_INVALID' },
  );
});

t.test('x-request-id is echoed when plain, minted otherwise', async (t) => {
  const { app } = await buildTestApp();
  t.teardown(() => app.close());
  const echoed = await app.inject({ url: '/healthz', headers: { 'x-request-id': 'cli-1234.abc' } });
  t.equal(echoed.headers['x-request-id'], 'cli-1234.abc');
  const refused = await app.inject({ url: '/v1/volumes', headers: { 'x-request-id': 'evil\u0000id with spaces' } });
  t.equal(refused.statusCode, 401);
  t.match(refused.headers['x-request-id'], /^[0-9a-f-]{36}$/, 'error replies carry a fresh id too');
  const notFound = await app.inject({ url: '/nowhere' });
  t.match(notFound.headers['x-request-id'], /^[0-9a-f-]{36}$/);
});
