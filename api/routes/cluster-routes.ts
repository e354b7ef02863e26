import type { FastifyInstance } from 'fastify';
import { PlinthError } from '../../common/plinth-error.js';
import type { ControlPlane } from '../../daemon/control-plane.js';
import { commonErrorResponses } from '../schemas/view-schemas.js';
import { bearerSecurity } from './route-security.js';

/** /v1/cluster and /v1/nodes: views of the cluster, and node removal (ARCHITECTURE.md "REST"). */
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

  app.delete<{ Params: { id: string } }>('/v1/nodes/:id', {
    schema: {
      tags: ['cluster'],
      summary: 'Remove a node from the cluster (refused while it holds the last in-sync replica of a volume)',
      security: bearerSecurity,
      params: { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 128 } } },
      response: { 204: { type: 'null', description: 'removed' }, ...commonErrorResponses, 404: { $ref: 'ErrorBody#' }, 409: { $ref: 'ErrorBody#' } },
    },
  }, async (request, reply) => {
    if (control.removeNode === undefined) throw new PlinthError('NOT_SUPPORTED', 'this control plane cannot remove nodes');
    await control.removeNode(request.params.id);
    reply.code(204);
  });
}
