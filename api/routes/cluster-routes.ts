import type { FastifyInstance } from 'fastify';
import type { ControlPlane } from '../../daemon/control-plane.js';
import { commonErrorResponses } from '../schemas/view-schemas.js';
import { bearerSecurity } from './route-security.js';

/** /v1/cluster and /v1/nodes: read-only views of the cluster (ARCHITECTURE.md "REST"). */
export function registerClusterRoutes(app: FastifyInstance, control: ControlPlane): void {
  app.get('/v1/cluster', {
    schema: {
      tags: ['cluster'], summary: 'Cluster summary', security: bearerSecurity,
      response: { 200: { $ref: 'ClusterView#' }, ...commonErrorResponses },
    },
  }, async () => control.cluster());

  app.get('/v1/nodes', {
    schema: {
      tags: ['cluster'], summary: 'List nodes with their disks', security: bearerSecurity,
      response: {
        200: {
          type: 'object',
          required: ['nodes'],
          properties: { nodes: { type: 'array', items: { $ref: 'NodeView#' } } },
        },
        ...commonErrorResponses,
      },
    },
  }, async () => ({ nodes: await control.nodes() }));
}
