import type { FastifyInstance } from 'fastify';
import { armCataloguedFailpoints, describeArmed } from '../../common/failpoints/arm-failpoints.js';
import { FAILPOINT_CATALOGUE } from '../../common/failpoints/failpoint-catalogue.js';
import type { FailpointRegistry } from '../../common/failpoints/failpoint-registry.js';
import { formatFailpoint } from '../../common/failpoints/failpoint-spec.js';

/**
 * Test-only routes (issue 7): arm, list and disarm failpoints at run time.
 * buildApiApp registers them only when the daemon runs with
 * PLINTH_TEST_API=1, inside the /v1 scope (bearer auth like every route),
 * and hides them from the OpenAPI document: they are not part of the
 * public contract.
 *
 *   GET    /v1/debug/failpoints                 armed specs with hits and fired counts
 *   PUT    /v1/debug/failpoints {"spec":"…"}    arm (same grammar as PLINTH_FAILPOINTS, `;`-separated)
 *   DELETE /v1/debug/failpoints                 disarm all
 */

export const DEBUG_FAILPOINTS_PATH = '/v1/debug/failpoints';
/** A spec list is a few names and options; anything longer is a mistake. */
const MAX_SPEC_LENGTH = 4096;

export interface FailpointStatusView {
  readonly name: string;
  /** The spec in the grammar's own text, e.g. `pool.write=error(EIO):times=1`. */
  readonly spec: string;
  readonly hits: number;
  readonly fired: number;
}

export interface FailpointsView {
  readonly failpoints: FailpointStatusView[];
  /** Every name that can be armed. */
  readonly known: string[];
}

export function registerDebugRoutes(app: FastifyInstance, registry: FailpointRegistry): void {
  const view = (): FailpointsView => ({
    failpoints: registry.status().map((point) => ({ name: point.spec.name, spec: formatFailpoint(point.spec), hits: point.hits, fired: point.fired })),
    known: FAILPOINT_CATALOGUE.map((entry) => entry.name),
  });

  app.get(DEBUG_FAILPOINTS_PATH, { schema: { hide: true } }, async () => view());

  app.put<{ Body: { spec: string } }>(DEBUG_FAILPOINTS_PATH, {
    schema: {
      hide: true,
      body: {
        type: 'object',
        required: ['spec'],
        additionalProperties: false,
        properties: { spec: { type: 'string', minLength: 1, maxLength: MAX_SPEC_LENGTH } },
      },
    },
  }, async (request) => {
    armCataloguedFailpoints(registry, request.body.spec);
    request.log.warn({ failpoints: describeArmed(registry) }, 'failpoints armed through the test API');
    return view();
  });

  app.delete(DEBUG_FAILPOINTS_PATH, { schema: { hide: true } }, async (request) => {
    registry.disarmAll();
    request.log.warn('failpoints disarmed through the test API');
    return view();
  });
}
