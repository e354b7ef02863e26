import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { PlinthError } from '../common/plinth-error.js';

/** Where the contract keeps the token (ARCHITECTURE.md "auth"); quoted in every 401. */
export const TOKEN_LOCATION_HINT = '<data-dir>/api-token';

/** Longest Authorization header we bother hashing; real tokens are far shorter. */
const AUTHORIZATION_MAX_LENGTH = 1024;

/**
 * Checks `Authorization: Bearer <token>` in constant time. Both sides are
 * hashed first so timingSafeEqual always compares equal-length digests and
 * the comparison leaks neither the token's content nor its length.
 */
export class BearerAuth {
  private readonly expectedDigest: Buffer;

  constructor(token: string) {
    if (token.length === 0) {
      throw new PlinthError('CONFIG_INVALID', 'the API token must not be empty');
    }
    this.expectedDigest = digest(token);
  }

  /** Throws UNAUTHORIZED unless the request carries the right bearer token. */
  check(request: FastifyRequest): void {
    const header = request.headers.authorization;
    const presented = bearerToken(header);
    if (presented === undefined) {
      const problem = header === undefined ? 'missing API token' : 'malformed Authorization header';
      throw new PlinthError(
        'UNAUTHORIZED',
        `${problem}: send "Authorization: Bearer <token>"; the token is in ${TOKEN_LOCATION_HINT}`,
      );
    }
    if (!timingSafeEqual(digest(presented), this.expectedDigest)) {
      throw new PlinthError(
        'UNAUTHORIZED',
        `wrong API token: use the token in ${TOKEN_LOCATION_HINT} of any cluster member`,
      );
    }
  }
}

function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined || header.length > AUTHORIZATION_MAX_LENGTH) return undefined;
  // RFC 6750 §2.1: the scheme name is case-insensitive.
  const match = /^Bearer +(\S+)\s*$/i.exec(header);
  return match?.[1];
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}
