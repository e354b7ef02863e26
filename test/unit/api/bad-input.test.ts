import t from 'tap';
import { AUTH_HEADERS, buildTestApp, errorOf } from './api-fixture.js';

const JSON_HEADERS = { ...AUTH_HEADERS, 'content-type': 'application/json' };

t.test('garbage JSON, empty JSON and prototype poisoning are INVALID_JSON', async (t) => {
  const { app, control } = await buildTestApp();
  t.teardown(() => app.close());
  const bodies = ['{not json', '{"name": "a", "size": ', '\u0000\u0001\u0002', '{"__proto__": {"admin": true}, "name": "a", "size": 1}', ''];
  for (const payload of bodies) {
    const response = await app.inject({ method: 'POST', url: '/v1/volumes', headers: JSON_HEADERS, payload });
    t.equal(response.statusCode, 400, JSON.stringify(payload));
    t.equal(errorOf(response).code, 'INVALID_JSON');
  }
  t.equal(control.volumes.size, 0);
  t.equal((await app.inject({ url: '/v1/volumes', headers: AUTH_HEADERS })).statusCode, 200, 'still serving');
});

t.test('wrong types and missing fields name the failing field', async (t) => {
  const { app } = await buildTestApp();
  t.teardown(() => app.close());
  const cases: { payload: unknown; field: string; url?: string; method?: 'POST' | 'PATCH' }[] = [
    { payload: { name: 'a', size: '1GiB', replicas: '3' }, field: 'body.replicas' },
    { payload: { name: 'a', size: '1GiB', replicas: 0 }, field: 'body.replicas' },
    { payload: { name: 'a', size: '1GiB', replicas: 6 }, field: 'body.replicas' },
    { payload: { name: 'a', size: '1GiB', replicas: 2.5 }, field: 'body.replicas' },
    { payload: { name: 'a' }, field: 'body.size' },
    { payload: { size: '1GiB' }, field: 'body.name' },
    { payload: [1, 2], field: 'body' },
    { payload: { name: 'a', size: '1GiB', color: 'red' }, field: 'body.color' },
    { payload: { node: 7 }, field: 'body.node', url: '/v1/volumes/a/attach' },
    { payload: {}, field: 'body.node', url: '/v1/volumes/a/attach' },
    { payload: { force: 'yes' }, field: 'body.force', url: '/v1/volumes/a/detach' },
    { payload: { size: '2GiB', name: 'b' }, field: 'body.name', url: '/v1/volumes/a', method: 'PATCH' },
  ];
  for (const c of cases) {
    const response = await app.inject({
      method: c.method ?? 'POST', url: c.url ?? '/v1/volumes', headers: JSON_HEADERS, payload: JSON.stringify(c.payload),
    });
    t.equal(response.statusCode, 400, JSON.stringify(c.payload));
    const error = errorOf(response);
    t.equal(error.code, 'INVALID_ARGUMENT', JSON.stringify(c.payload));
    t.equal(error.details?.['field'], c.field);
    t.match(error.message, c.field);
  }
});

t.test('bad sizes are INVALID_SIZE, whether the schema or parseSize catches them', async (t) => {
  const { app, control } = await buildTestApp();
  t.teardown(() => app.close());
  for (const size of ['10GB', '-1', 'abc', '', '1e9', '0.5B', '99999999PiB', -1, 1.5, true, null, 'x'.repeat(40)]) {
    const response = await app.inject({ method: 'POST', url: '/v1/volumes', headers: AUTH_HEADERS, payload: { name: 'a', size } });
    t.equal(response.statusCode, 400, JSON.stringify(size));
    t.equal(errorOf(response).code, 'INVALID_SIZE', JSON.stringify(size));
  }
  const unsafe = await app.inject({ method: 'POST', url: '/v1/volumes', headers: JSON_HEADERS, payload: '{"name":"a","size":18014398509481985}' });
  t.equal(errorOf(unsafe).code, 'INVALID_SIZE', 'integers beyond 2^53 are refused, not rounded');
  t.equal(control.volumes.size, 0);
});

t.test('bad volume names are INVALID_NAME in bodies and in paths', async (t) => {
  const { app } = await buildTestApp();
  t.teardown(() => app.close());
  for (const name of ['', 'DB1', 'db_1', '-db', 'db-', 'vol@snap', 'a b', 'x'.repeat(64), 'é', 42]) {
    const response = await app.inject({ method: 'POST', url: '/v1/volumes', headers: AUTH_HEADERS, payload: { name, size: '1GiB' } });
    t.equal(response.statusCode, 400, JSON.stringify(name));
    t.equal(errorOf(response).code, 'INVALID_NAME', JSON.stringify(name));
  }
  for (const path of ['DB1', 'a%20b', 'vol%40snap', 'db_1']) {
    const response = await app.inject({ url: `/v1/volumes/${path}`, headers: AUTH_HEADERS });
    t.equal(response.statusCode, 400, path);
    t.equal(errorOf(response).code, 'INVALID_NAME', path);
  }
  const good = await app.inject({ method: 'POST', url: '/v1/volumes', headers: AUTH_HEADERS, payload: { name: 'x'.repeat(63), size: 1 } });
  t.equal(good.statusCode, 201, '63 characters is the limit');
});

t.test('oversized bodies get 413, non-JSON media types 415', async (t) => {
  const { app } = await buildTestApp({ bodyLimitBytes: 1024 });
  t.teardown(() => app.close());
  const big = await app.inject({
    method: 'POST', url: '/v1/volumes', headers: JSON_HEADERS,
    payload: JSON.stringify({ name: 'a', size: 1, pad: 'p'.repeat(2048) }),
  });
  t.equal(big.statusCode, 413);
  t.same(errorOf(big).details, { bodyLimitBytes: 1024 });
  t.equal(errorOf(big).code, 'BODY_TOO_LARGE');

  for (const contentType of ['text/plain', 'application/x-www-form-urlencoded', 'application/xml']) {
    const response = await app.inject({
      method: 'POST', url: '/v1/volumes', headers: { ...AUTH_HEADERS, 'content-type': contentType }, payload: 'name=a&size=1',
    });
    t.equal(response.statusCode, 415, contentType);
    t.equal(errorOf(response).code, 'UNSUPPORTED_MEDIA_TYPE');
  }
});

t.test('unknown routes and methods are 404 NOT_FOUND in the error shape', async (t) => {
  const { app } = await buildTestApp();
  t.teardown(() => app.close());
  for (const [method, url] of [['GET', '/v1/snapshots'], ['GET', '/nowhere'], ['PUT', '/v1/volumes'], ['POST', '/v1/cluster']] as const) {
    const response = await app.inject({ method, url, headers: AUTH_HEADERS });
    t.equal(response.statusCode, 404, `${method} ${url}`);
    t.equal(errorOf(response).code, 'NOT_FOUND');
    t.match(errorOf(response).message, url);
  }
  const malformed = await app.inject({ url: '/v1/volumes/%E0%A4%A', headers: AUTH_HEADERS });
  t.equal(malformed.statusCode, 400, 'malformed percent-encoding');
  t.equal(errorOf(malformed).code, 'INVALID_ARGUMENT');
});
