import t from 'tap';
import { buildTestApp } from './api-fixture.js';

/** Every route of the contract (ARCHITECTURE.md "REST") with its methods. */
const EXPECTED_OPERATIONS: Readonly<Record<string, readonly string[]>> = {
  '/v1/cluster': ['get'],
  '/v1/nodes': ['get'],
  '/v1/nodes/{id}': ['delete'],
  '/v1/nodes/{id}/drain': ['post', 'delete'],
  '/v1/volumes': ['get', 'post'],
  '/v1/volumes/{name}': ['get', 'patch', 'delete'],
  '/v1/volumes/{name}/attach': ['post'],
  '/v1/volumes/{name}/chap': ['put', 'delete'],
  '/v1/volumes/{name}/detach': ['post'],
  // Issue 8 (api/routes/snapshot-routes.ts).
  '/v1/volumes/{name}/snapshots': ['get', 'post'],
  '/v1/volumes/{name}/snapshots/{snapshot}': ['get', 'delete'],
  '/v1/volumes/{name}/snapshots/{snapshot}/clone': ['post'],
  '/v1/volumes/{name}/snapshots/{snapshot}/revert': ['post'],
  '/v1/snapshot-groups': ['post'],
  '/healthz': ['get'],
  '/readyz': ['get'],
  '/metrics': ['get'],
};

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function objectAt(value: Json | undefined, what: string): { [key: string]: Json } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${what} is not an object`);
  return value;
}

/** Collect every $ref anywhere in the document. */
function collectRefs(value: Json, found: string[] = []): string[] {
  if (Array.isArray(value)) {
    for (const item of value) collectRefs(item, found);
  } else if (typeof value === 'object' && value !== null) {
    for (const [key, child] of Object.entries(value)) {
      if (key === '$ref' && typeof child === 'string') found.push(child);
      else collectRefs(child, found);
    }
  }
  return found;
}

t.test('/docs/json is an OpenAPI 3 document covering every route', async (t) => {
  const { app } = await buildTestApp();
  t.teardown(() => app.close());
  const response = await app.inject({ url: '/docs/json' });
  t.equal(response.statusCode, 200);
  const doc = objectAt(response.json<Json>(), 'document');
  t.match(doc['openapi'], /^3\.\d+\.\d+$/);
  t.match(objectAt(doc['info'], 'info'), { title: String, version: '0.1.0-test' });

  const paths = objectAt(doc['paths'], 'paths');
  t.same(Object.keys(paths).sort(), Object.keys(EXPECTED_OPERATIONS).sort(), 'exactly the contract paths');
  const schemes = objectAt(objectAt(doc['components'], 'components')['securitySchemes'], 'securitySchemes');
  t.match(schemes, { bearerAuth: { type: 'http', scheme: 'bearer' } });

  for (const [path, methods] of Object.entries(EXPECTED_OPERATIONS)) {
    const item = objectAt(paths[path], path);
    t.same(Object.keys(item).sort(), [...methods].sort(), `${path} methods`);
    for (const method of methods) {
      const operation = objectAt(item[method], `${method} ${path}`);
      const responses = objectAt(operation['responses'], 'responses');
      t.ok(Object.keys(responses).some((code) => code.startsWith('2')), `${method} ${path} documents success`);
      if (path.startsWith('/v1/')) {
        t.same(operation['security'], [{ bearerAuth: [] }], `${method} ${path} requires the token`);
        t.ok('401' in responses, `${method} ${path} documents 401`);
      }
      if (path.includes('{name}')) {
        t.match(operation['parameters'], [{ in: 'path', name: 'name', required: true }], `${method} ${path} path param`);
      }
      if (method === 'post' || method === 'patch') {
        // No body: detach, drain and revert act on the path alone.
        if (path.endsWith('/detach') || path.endsWith('/drain') || path.endsWith('/revert')) continue;
        t.match(operation['requestBody'], { required: true, content: { 'application/json': { schema: { additionalProperties: false } } } });
      }
    }
  }
});

t.test('every $ref in the document resolves to a component schema', async (t) => {
  const { app } = await buildTestApp();
  t.teardown(() => app.close());
  const doc = objectAt((await app.inject({ url: '/docs/json' })).json<Json>(), 'document');
  const schemas = objectAt(objectAt(doc['components'], 'components')['schemas'], 'schemas');
  const refs = collectRefs(doc);
  t.ok(refs.length > 10, 'views are shared by reference');
  for (const ref of new Set(refs)) {
    const name = ref.replace('#/components/schemas/', '');
    t.ok(ref.startsWith('#/components/schemas/') && name in schemas, `${ref} resolves`);
  }
  t.match(schemas, { VolumeView: { type: 'object' }, NodeView: { type: 'object' }, ErrorBody: { type: 'object' } });
});

t.test('/docs serves the Swagger UI page', async (t) => {
  const { app } = await buildTestApp();
  t.teardown(() => app.close());
  const response = await app.inject({ url: '/docs' });
  t.equal(response.statusCode, 200);
  t.match(response.headers['content-type'], /text\/html/);
  t.match(response.body, /swagger/i);
});
