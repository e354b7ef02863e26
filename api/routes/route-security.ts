/** OpenAPI security requirement of every /v1 route; the scheme is declared in openapi.ts. */
export const BEARER_SCHEME_NAME = 'bearerAuth';
export const bearerSecurity = [{ [BEARER_SCHEME_NAME]: [] }];
