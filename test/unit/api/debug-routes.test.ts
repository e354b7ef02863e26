/**
 * Issue 7: the test-only failpoint API. Registered only when buildApiApp is
 * told so (plinthd: PLINTH_TEST_API=1), behind the bearer token, and kept
 * out of the OpenAPI document.
 */
import t from 'tap';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { buildApiApp } from '../../../api/build-api-app.js';
import { failpoints } from '../../../common/failpoints/failpoints.js';
import { FakeControlPlane } from '../../helpers/fake-control-plane.js';
import { AUTH_HEADERS, errorOf, TEST_TOKEN } from './api-fixture.js';

const PATH = '/v1/debug/failpoints';

async function app(testApi: boolean): Promise<Awaited<ReturnType<typeof buildApiApp>>> {
  return buildApiApp(
    { token: TEST_TOKEN, version: '0.1.0-test', logger: pino({ level: 'silent' }), testApi },
    { control: new FakeControlPlane(), metrics: new Registry() },
  );
}

t.test('without the test API the routes do not exist', async (t) => {
  const api = await app(false);
  t.teardown(() => api.close());
  for (const method of ['GET', 'PUT', 'DELETE'] as const) {
    const response = await api.inject({ method, url: PATH, headers: AUTH_HEADERS, ...(method === 'PUT' ? { payload: { spec: 'pool.write=error' } } : {}) });
    t.equal(response.statusCode, 404, `${method} is 404`);
  }
  t.equal(failpoints.armed, false, 'nothing was armed');
});

t.test('with the test API: token required, arm, list, disarm; bad specs are 400', async (t) => {
  const api = await app(true);
  t.teardown(async () => {
    failpoints.disarmAll();
    await api.close();
  });
  t.equal((await api.inject({ method: 'GET', url: PATH })).statusCode, 401, 'no token: 401');
  t.equal((await api.inject({ method: 'PUT', url: PATH, payload: { spec: 'pool.write=error' } })).statusCode, 401, 'no token: nothing armed');
  t.equal(failpoints.armed, false);

  const empty = await api.inject({ method: 'GET', url: PATH, headers: AUTH_HEADERS });
  t.equal(empty.statusCode, 200);
  t.match(empty.json(), { failpoints: [], known: ['replica.write.before-ack'] });

  const armed = await api.inject({ method: 'PUT', url: PATH, headers: AUTH_HEADERS, payload: { spec: 'pool.write=error(ENOSPC):times=2; raft.apply.before=stall(5)' } });
  t.equal(armed.statusCode, 200, armed.body);
  t.same(armed.json<{ failpoints: unknown }>().failpoints, [
    { name: 'pool.write', spec: 'pool.write=error(ENOSPC):times=2', hits: 0, fired: 0 },
    { name: 'raft.apply.before', spec: 'raft.apply.before=stall(5)', hits: 0, fired: 0 },
  ]);
  t.equal(failpoints.armed, true, 'the process-wide registry is armed');
  t.same(failpoints.check('pool.write', 'v'), { kind: 'error', errno: 'ENOSPC' });
  t.match((await api.inject({ method: 'GET', url: PATH, headers: AUTH_HEADERS })).json(), { failpoints: [{ name: 'pool.write', hits: 1, fired: 1 }, { name: 'raft.apply.before' }] }, 'hits and firings show');

  for (const [payload, code] of [
    [{ spec: 'pool.write=explode' }, 'INVALID_ARGUMENT'],
    [{ spec: 'no.such.point=crash' }, 'INVALID_ARGUMENT'],
    [{ spec: '' }, 'INVALID_ARGUMENT'],
    [{ spec: 'pool.write=crash', extra: 1 }, 'INVALID_ARGUMENT'],
    [{}, 'INVALID_ARGUMENT'],
  ] as const) {
    const refused = await api.inject({ method: 'PUT', url: PATH, headers: AUTH_HEADERS, payload });
    t.equal(refused.statusCode, 400, `${JSON.stringify(payload)}: 400`);
    t.equal(errorOf(refused).code, code);
  }
  t.equal(failpoints.status().length, 2, 'refused specs armed nothing');

  const off = await api.inject({ method: 'PUT', url: PATH, headers: AUTH_HEADERS, payload: { spec: 'raft.apply.before=off' } });
  t.same(off.json<{ failpoints: Array<{ name: string }> }>().failpoints.map((point) => point.name), ['pool.write'], '`off` disarms one');
  const cleared = await api.inject({ method: 'DELETE', url: PATH, headers: AUTH_HEADERS });
  t.equal(cleared.statusCode, 200);
  t.same(cleared.json<{ failpoints: unknown }>().failpoints, []);
  t.equal(failpoints.armed, false, 'DELETE disarms all');
});

t.test('the debug routes stay out of the OpenAPI document', async (t) => {
  const api = await app(true);
  t.teardown(() => api.close());
  const doc = (await api.inject({ url: '/docs/json' })).json<{ paths: Record<string, unknown> }>();
  t.notOk(Object.keys(doc.paths).some((path) => path.includes('debug')), 'no /v1/debug path in the contract');
});
