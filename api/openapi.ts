import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { BEARER_SCHEME_NAME } from './routes/route-security.js';

export const DOCS_PREFIX = '/docs';

/**
 * OpenAPI 3 document built from the routes' own JSON schemas, served as JSON
 * at /docs/json with Swagger UI at /docs. Must be registered before any route
 * so the plugin sees every route as it is added.
 */
export async function registerOpenApi(app: FastifyInstance, version: string): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Plinth control API',
        description: 'Volumes, nodes and cluster state of a Plinth block-storage cluster. '
          + 'Send `Authorization: Bearer <token>`; the token is in `<data-dir>/api-token`.',
        version,
      },
      tags: [
        { name: 'cluster', description: 'cluster and node views' },
        { name: 'volumes', description: 'volume lifecycle' },
        { name: 'probes', description: 'health, readiness and metrics (no token)' },
      ],
      components: {
        securitySchemes: {
          [BEARER_SCHEME_NAME]: { type: 'http', scheme: 'bearer', description: 'contents of <data-dir>/api-token' },
        },
      },
    },
    // Name shared schemas after their $id (VolumeView, ErrorBody…) instead of def-N.
    refResolver: {
      buildLocalReference(json, _baseUri, _fragment, index) {
        return typeof json.$id === 'string' ? json.$id : `def-${index}`;
      },
    },
  });
  await app.register(swaggerUi, { routePrefix: DOCS_PREFIX });
}
