import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

export const REQUEST_ID_HEADER = 'x-request-id';

/** Accept a caller's id only if it is short and plain, so it cannot bloat or forge log lines. */
const ACCEPTED_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Fastify `genReqId`: reuse the caller's x-request-id (proxies, CLI) or mint one. */
export function requestIdFor(request: IncomingMessage): string {
  const presented = request.headers[REQUEST_ID_HEADER];
  if (typeof presented === 'string' && ACCEPTED_REQUEST_ID.test(presented)) return presented;
  return randomUUID();
}
