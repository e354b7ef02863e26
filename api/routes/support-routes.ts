import type { FastifyInstance } from 'fastify';
import { parseDurationMs } from '../../common/durations.js';
import type { SupportService } from '../../daemon/support/support-service.js';
import { commonErrorResponses } from '../schemas/view-schemas.js';
import { bearerSecurity } from './route-security.js';

/** Response header of /v1/support/bundle: each node's status, so a client can report without opening the archive. */
export const SUPPORT_NODES_HEADER = 'x-plinth-support-nodes';

const tags = ['support'];
const sinceQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    since: { type: 'string', minLength: 1, maxLength: 32, description: 'only log lines this recent, e.g. 30m, 2h, 1d (default: all kept)' },
  },
} as const;

/**
 * `plinth support bundle` (docs/operations.md "Support bundle", docs/api.md):
 * the whole cluster's bundle as a .tar.gz, and this node's part as JSON.
 * Both are behind the API token like every /v1 route; their contents are
 * redacted (daemon/support/redaction.ts).
 */
export function registerSupportRoutes(app: FastifyInstance, support: SupportService): void {
  app.get<{ Querystring: { since?: string } }>('/v1/support/bundle', {
    schema: {
      tags, security: bearerSecurity, querystring: sinceQuery,
      summary: 'Support bundle of every node (logs, redacted config, pool, Raft, cluster state) as a .tar.gz',
      produces: ['application/gzip'],
      response: { 200: { type: 'string', format: 'binary', description: 'tar.gz: manifest.json, cluster.json, one directory per node' }, ...commonErrorResponses },
    },
  }, async (request, reply) => {
    const bundle = await support.bundle({ sinceMs: sinceMs(request.query.since) });
    const stamp = bundle.manifest.createdAt.replace(/[:.]/g, '-');
    reply.type('application/gzip');
    reply.header('content-disposition', `attachment; filename="plinth-support-${stamp}.tar.gz"`);
    reply.header(SUPPORT_NODES_HEADER, JSON.stringify(bundle.manifest.nodes.map((node) => ({ nodeId: node.nodeId, status: node.status }))));
    return reply.send(bundle.archive);
  });

  app.get<{ Querystring: { since?: string } }>('/v1/support/node', {
    schema: {
      tags, security: bearerSecurity, querystring: sinceQuery,
      summary: "This node's part of a support bundle: file name → redacted contents",
      response: {
        200: {
          type: 'object',
          required: ['nodeId', 'files'],
          properties: { nodeId: { type: 'string' }, files: { type: 'object', additionalProperties: { type: 'string' } } },
        },
        ...commonErrorResponses,
      },
    },
  }, async (request) => support.nodePart({ sinceMs: sinceMs(request.query.since) }));
}

function sinceMs(since: string | undefined): number {
  return since === undefined ? 0 : Date.now() - parseDurationMs(since);
}
