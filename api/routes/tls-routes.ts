import type { FastifyInstance } from 'fastify';
import type { ClusterTlsService } from '../../daemon/tls/cluster-tls-service.js';
import { clientCertificateBodySchema, clientCertificateResponseSchema, type ClientCertificateBody } from '../schemas/tls-schemas.js';
import { commonErrorResponses } from '../schemas/view-schemas.js';
import { bearerSecurity } from './route-security.js';
import { registerJoinTokenRoute } from './cluster-routes.js';

/**
 * The TLS routes of a node (docs/security.md, docs/api.md): NBD client
 * certificates signed by the cluster CA, and the join token
 * (cluster-routes.ts). Both answer secrets, so they live behind the API
 * token like every /v1 route, and their bodies are never logged (fastify
 * logs no bodies; the logger redacts joinToken/clientKey fields).
 */
export function registerTlsRoutes(app: FastifyInstance, tls: ClusterTlsService): void {
  app.post<{ Body: ClientCertificateBody }>('/v1/tls/client-certificates', {
    schema: {
      tags: ['tls'],
      summary: 'Issue an NBD client certificate signed by the cluster CA (a new key pair; clientAuth only, CN = name)',
      security: bearerSecurity,
      body: clientCertificateBodySchema,
      response: { 201: clientCertificateResponseSchema, ...commonErrorResponses },
    },
  }, async (request, reply) => {
    const { name, days } = request.body;
    const bundle = await tls.issueClientCertificate(days === undefined ? { name } : { name, days });
    request.log.info({ name, days: days ?? 'default' }, 'issued an NBD client certificate');
    reply.code(201);
    return bundle;
  });
  registerJoinTokenRoute(app, tls);
}
