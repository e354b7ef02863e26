import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isPlinthError, PlinthError } from '../common/plinth-error.js';
import { isFastifyError, translateFastifyError } from './fastify-error-translation.js';
import { errorBody, httpStatusForCode, INTERNAL_SERVER_ERROR } from './http-errors.js';

/**
 * Every failure leaves the API as {"error": {"code", "message", "details"?}}
 * with the status from http-errors.ts. Client mistakes are logged at debug
 * level (they cost one request, ARCHITECTURE.md invariant 7); server faults
 * are logged with their stack and answered without internals.
 */
export function installErrorHandling(app: FastifyInstance, bodyLimitBytes: number): void {
  app.setErrorHandler(async (error: unknown, request, reply) => {
    const plinthError = toPlinthError(error, bodyLimitBytes);
    return sendError(plinthError, error, request, reply);
  });

  app.setNotFoundHandler(async (request, reply) => {
    const notFound = new PlinthError('NOT_FOUND', `no route ${request.method} ${routePathForMessage(request.url)}`, {
      method: request.method,
    });
    return sendError(notFound, notFound, request, reply);
  });
}

/** What the app's error handler does with any thrown value; exported for the framework-error hook. */
export function toPlinthError(error: unknown, bodyLimitBytes: number): PlinthError {
  if (isPlinthError(error)) return error;
  if (isFastifyError(error)) {
    const translated = translateFastifyError(error, bodyLimitBytes);
    if (translated !== undefined) return translated;
  }
  return new PlinthError('INTERNAL', 'internal error', {}, { cause: error });
}

async function sendError(
  plinthError: PlinthError,
  original: unknown,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<FastifyReply> {
  const status = httpStatusForCode(plinthError.code);
  if (status === INTERNAL_SERVER_ERROR) {
    request.log.error({ err: original }, 'request failed with an internal error');
    reply.code(status);
    return reply.send(
      errorBody('INTERNAL', `internal error; see the plinthd log for request id ${request.id}`, {
        requestId: request.id,
      }),
    );
  }
  request.log.debug({ code: plinthError.code, status, message: plinthError.message }, 'request refused');
  if (plinthError.code === 'UNAUTHORIZED') {
    // RFC 6750 §3: a 401 names the scheme the client should use.
    reply.header('www-authenticate', 'Bearer realm="plinth"');
  }
  reply.code(status);
  return reply.send(errorBody(plinthError.code, plinthError.message, plinthError.details));
}

/** Bound what an attacker-chosen URL can put into a message and the log. */
function routePathForMessage(url: string): string {
  const path = url.split('?')[0] ?? url;
  const maxLength = 200;
  return path.length > maxLength ? `${path.slice(0, maxLength)}…` : path;
}
