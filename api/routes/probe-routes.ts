import type { FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import type { ControlPlane } from '../../daemon/control-plane.js';

const tags = ['probes'];

/**
 * Unauthenticated endpoints for supervisors and scrapers: liveness, readiness
 * and Prometheus metrics. They expose no volume data.
 */
export function registerProbeRoutes(app: FastifyInstance, control: ControlPlane, metrics: Registry): void {
  app.get('/healthz', {
    schema: {
      tags, summary: 'Liveness: 200 while the process runs',
      response: { 200: { type: 'object', required: ['status'], properties: { status: { type: 'string', enum: ['ok'] } } } },
    },
  }, async () => ({ status: 'ok' }));

  app.get('/readyz', {
    schema: {
      tags, summary: 'Readiness: 200 when serving, 503 with reasons otherwise',
      response: { 200: { $ref: 'Readiness#' }, 503: { $ref: 'Readiness#' } },
    },
  }, async (_request, reply) => {
    const readiness = control.readiness();
    reply.code(readiness.ready ? 200 : 503);
    return readiness;
  });

  app.get('/metrics', {
    schema: {
      tags, summary: 'Prometheus metrics (text exposition format)',
      produces: ['text/plain'],
      response: { 200: { type: 'string', description: 'Prometheus text format' } },
    },
  }, async (_request, reply) => {
    const text = await metrics.metrics();
    reply.type(metrics.contentType);
    return text;
  });
}
