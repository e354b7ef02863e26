import type { FastifyInstance } from 'fastify';
import { PlinthError } from '../../common/plinth-error.js';
import type { ControlPlane } from '../../daemon/control-plane.js';
import type { ClusterTlsService } from '../../daemon/tls/cluster-tls-service.js';
import { joinTokenResponseSchema } from '../schemas/tls-schemas.js';
import { commonErrorResponses } from '../schemas/view-schemas.js';
import { bearerSecurity } from './route-security.js';

const nodeIdParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 128 } } } as const;

/** /v1/cluster and /v1/nodes: views of the cluster, node removal and drain (ARCHITECTURE.md "REST", issue 4 "Drain"). */
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

  app.post<{ Params: { id: string } }>('/v1/nodes/:id/drain', {
    schema: {
      tags: ['cluster'],
      summary: 'Start draining a node: its replicas and idle attachments move away; 202 with the node view (progress in drain)',
      security: bearerSecurity,
      params: nodeIdParams,
      response: { 202: { $ref: 'NodeView#' }, ...commonErrorResponses, 404: { $ref: 'ErrorBody#' } },
    },
  }, async (request, reply) => {
    if (control.drainNode === undefined) throw new PlinthError('NOT_SUPPORTED', 'this control plane cannot drain nodes');
    const node = await control.drainNode(request.params.id);
    reply.code(202);
    return node;
  });

  app.delete<{ Params: { id: string } }>('/v1/nodes/:id/drain', {
    schema: {
      tags: ['cluster'],
      summary: 'Cancel a drain (what already moved stays moved); 200 with the node view',
      security: bearerSecurity,
      params: nodeIdParams,
      response: { 200: { $ref: 'NodeView#' }, ...commonErrorResponses, 404: { $ref: 'ErrorBody#' } },
    },
  }, async (request) => {
    if (control.undrainNode === undefined) throw new PlinthError('NOT_SUPPORTED', 'this control plane cannot drain nodes');
    return control.undrainNode(request.params.id);
  });
}

/**
 * `plinth cluster join-token` (docs/security.md "Joining"): the token a new
 * node passes as --join-token. A plain cluster answers NOT_FOUND: its joins
 * need no token. The answer is a secret: never logged.
 */
export function registerJoinTokenRoute(app: FastifyInstance, tls: ClusterTlsService): void {
  app.get('/v1/cluster/join-token', {
    schema: {
      tags: ['cluster'], summary: "The cluster's join token, for a new node's --join-token (TLS clusters only)", security: bearerSecurity,
      response: { 200: joinTokenResponseSchema, ...commonErrorResponses, 404: { $ref: 'ErrorBody#' } },
    },
  }, async () => ({ token: tls.requireJoinToken() }));
}
