import { createServer as createHttpsServer } from 'node:https';
import Fastify, {
  type FastifyServerFactory,
  type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest,
} from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { failpoints } from '../common/failpoints/failpoints.js';
import { PlinthError } from '../common/plinth-error.js';
import type { ControlPlane } from '../daemon/control-plane.js';
import type { SupportService } from '../daemon/support/support-service.js';
import type { ClusterTlsService } from '../daemon/tls/cluster-tls-service.js';
import { BearerAuth } from './bearer-auth.js';
import { registerDashboardRoutes } from './dashboard/dashboard-routes.js';
import { installErrorHandling, toPlinthError } from './error-handling.js';
import { errorBody, httpStatusForCode } from './http-errors.js';
import { registerOpenApi } from './openapi.js';
import { installRequestScope, REQUEST_ID_HEADER, requestIdFor, requestIdLogController } from './request-id.js';
import { registerClusterRoutes } from './routes/cluster-routes.js';
import { registerDebugRoutes } from './routes/debug-routes.js';
import { registerProbeRoutes } from './routes/probe-routes.js';
import { registerSupportRoutes } from './routes/support-routes.js';
import { registerTlsRoutes } from './routes/tls-routes.js';
import { registerVolumeRoutes } from './routes/volume-routes.js';
import { registerSnapshotRoutes } from './routes/snapshot-routes.js';
import { registerSendReceiveRoutes, type SendReceiveServices } from './routes/send-receive-routes.js';
import { sharedSchemas } from './schemas/view-schemas.js';

export interface ApiAppOptions {
  /** Bearer token every /v1 request must carry (contents of <data-dir>/api-token). */
  readonly token: string;
  /** Daemon version, shown in the OpenAPI document. */
  readonly version: string;
  readonly logger: Logger;
  /** Largest accepted request body; control requests are tiny. */
  readonly bodyLimitBytes?: number;
  /**
   * Longest a connection may stay silent (slow-loris guard). There is no
   * whole-request deadline: a streamed `volume receive` upload may take hours;
   * control bodies are capped by bodyLimitBytes and headers by Node's headersTimeout.
   */
  readonly idleTimeoutMs?: number;
  /** Test-only routes (api/routes/debug-routes.ts): true only when the daemon runs with PLINTH_TEST_API=1. */
  readonly testApi?: boolean;
  /** Serve HTTPS with the node certificate (TLS cluster, docs/security.md); absent: plain HTTP. */
  readonly https?: { readonly key: string; readonly cert: string };
}

export interface ApiAppModules {
  readonly control: ControlPlane;
  readonly metrics: Registry;
  /** `plinth support bundle` (api/routes/support-routes.ts); absent: those routes are not served. */
  readonly support?: SupportService;
  /** Join token and NBD client certificates (api/routes/tls-routes.ts); absent: those routes are not served. */
  readonly tls?: ClusterTlsService;
  /** Issue 8 send/receive and retention schedules (api/routes/send-receive-routes.ts); absent: not served. */
  readonly sendReceive?: SendReceiveServices;
}

export const DEFAULT_BODY_LIMIT_BYTES = 64 * 1024;
export const DEFAULT_IDLE_TIMEOUT_MS = 30_000;

/**
 * Builds the REST API without listening: the daemon calls `listen`, tests
 * use `inject()`. Routes and the error table follow ARCHITECTURE.md "REST".
 */
export async function buildApiApp(options: ApiAppOptions, modules: ApiAppModules): Promise<FastifyInstance> {
  const bodyLimitBytes = options.bodyLimitBytes ?? DEFAULT_BODY_LIMIT_BYTES;
  const idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  const auth = new BearerAuth(options.token);
  // pino's Logger is a FastifyBaseLogger; widening keeps the public type plain FastifyInstance.
  const logger: FastifyBaseLogger = options.logger;
  const app: FastifyInstance = Fastify({
    loggerInstance: logger,
    bodyLimit: bodyLimitBytes,
    requestTimeout: 0,
    connectionTimeout: idleTimeoutMs,
    ...httpsServerFactory(options.https, idleTimeoutMs),
    genReqId: requestIdFor,
    logController: requestIdLogController(),
    ajv: {
      // Closed bodies must refuse unknown properties, not strip them, and a
      // string "3" is not the integer 3.
      customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false },
    },
    // Errors the router raises before any route matches (malformed URL encoding).
    frameworkErrors: (error, request, reply) => answerFrameworkError(error, request, reply, bodyLimitBytes),
  });

  app.addHook('onSend', async (request, reply) => {
    reply.header(REQUEST_ID_HEADER, request.id);
  });
  installRequestScope(app);
  // The API speaks JSON only; without this, text/plain bodies would reach schema validation.
  app.removeContentTypeParser('text/plain');
  for (const schema of sharedSchemas) app.addSchema(schema);
  installErrorHandling(app, bodyLimitBytes);
  await registerOpenApi(app, options.version);

  registerProbeRoutes(app, modules.control, modules.metrics);
  await registerDashboardRoutes(app);
  // Every /v1 route lives in this scope so none can be added without the auth hook.
  await app.register(async (v1) => {
    v1.addHook('onRequest', async (request) => auth.check(request));
    registerClusterRoutes(v1, modules.control);
    registerVolumeRoutes(v1, modules.control);
    registerSnapshotRoutes(v1, modules.control);
    if (modules.support !== undefined) registerSupportRoutes(v1, modules.support);
    if (modules.tls !== undefined) registerTlsRoutes(v1, modules.tls);
    if (modules.sendReceive !== undefined) await registerSendReceiveRoutes(v1, modules.sendReceive);
    if (options.testApi === true) registerDebugRoutes(v1, failpoints);
  });
  await app.ready();
  return app;
}

/**
 * HTTPS through a server factory keeps the app's type the plain
 * FastifyInstance (an https.Server is an http.Server to fastify's routing).
 */
function httpsServerFactory(https: ApiAppOptions['https'], idleTimeoutMs: number): { serverFactory?: FastifyServerFactory } {
  if (https === undefined) return {};
  return {
    serverFactory: (handler) => {
      // fastify applies its timeouts only to servers it creates itself.
      const server = createHttpsServer({ key: https.key, cert: https.cert, minVersion: 'TLSv1.2', requestTimeout: 0 }, handler);
      server.setTimeout(idleTimeoutMs);
      return server;
    },
  };
}

function answerFrameworkError(
  error: FastifyError,
  request: FastifyRequest,
  reply: FastifyReply,
  bodyLimitBytes: number,
): void {
  const translated = toPlinthError(error, bodyLimitBytes);
  const plinthError = translated.code === 'INTERNAL'
    ? new PlinthError('INVALID_ARGUMENT', `malformed request: ${error.message}`)
    : translated;
  reply.code(httpStatusForCode(plinthError.code));
  reply.header(REQUEST_ID_HEADER, request.id);
  void reply.send(errorBody(plinthError.code, plinthError.message, plinthError.details));
}
