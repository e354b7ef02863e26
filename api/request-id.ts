import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { LogController, type FastifyInstance } from 'fastify';
import { REQUEST_ID_LOG_KEY, runWithRequestId, type RequestScopeHandle } from '../daemon/logging/request-context.js';

export const REQUEST_ID_HEADER = 'x-request-id';

/** Accept a caller's id only if it is short and plain, so it cannot bloat or forge log lines. */
const ACCEPTED_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Fastify `genReqId`: reuse the caller's x-request-id (proxies, CLI) or mint one. */
export function requestIdFor(request: IncomingMessage): string {
  const presented = request.headers[REQUEST_ID_HEADER];
  if (typeof presented === 'string' && ACCEPTED_REQUEST_ID.test(presented)) return presented;
  return randomUUID();
}

/** Fastify's own request lines use the same key as every other line of an operation (not its default `reqId`). */
export function requestIdLogController(): LogController {
  return new LogController({ requestIdLogLabel: REQUEST_ID_LOG_KEY });
}

/** A request's hold on its id scope, ended once the response is sent. */
const scopes = new WeakMap<object, RequestScopeHandle>();

/** A request whose response never completes (a hung attach) stops being tagged after this. */
export const REQUEST_SCOPE_MAX_MS = 120_000;

/**
 * Make the request id current (daemon/logging/request-context.ts) for the
 * handler and everything it calls, so a proposal carries it to the leader and
 * into the Raft entry, and every log line on its behalf has it. Entered in
 * preHandler: body parsing runs on the socket's own callbacks, so a scope
 * entered earlier would be lost before the handler; the handler is called
 * from this hook's `done`.
 */
export function installRequestScope(app: FastifyInstance): void {
  app.addHook('preHandler', (request, _reply, done) => {
    runWithRequestId(request.id, (handle) => {
      scopes.set(request, handle);
      done();
    }, REQUEST_SCOPE_MAX_MS);
  });
  app.addHook('onResponse', (request, _reply, done) => {
    scopes.get(request)?.end();
    done();
  });
  // A client that hangs up gets no onResponse.
  app.addHook('onRequestAbort', (request, done) => {
    scopes.get(request)?.end();
    done();
  });
}
