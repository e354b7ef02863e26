import { Agent } from 'undici';

/** The dispatcher type of Node's global fetch (undici-types). */
export type FetchDispatcher = NonNullable<RequestInit['dispatcher']>;

/**
 * HTTPS to a TLS cluster's API (docs/security.md "API"): the node
 * certificates are signed by the cluster CA, which no system trust store
 * holds, so the client trusts exactly that CA. One undici Agent per client
 * (keep-alive pool), handed to fetch as its dispatcher.
 */
export function dispatcherTrusting(caPem: string): FetchDispatcher {
  // The npm undici (^6, the major Node 20 bundles) and Node's built-in fetch share the
  // Dispatcher protocol; only their type declarations are separate packages.
  const agent: object = new Agent({ connect: { ca: caPem } });
  return agent as FetchDispatcher;
}

/** Certificate-verification failures as undici/node report them (the `code` in the error's cause chain). */
const TLS_VERIFY_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_HAS_EXPIRED',
]);

/** Advice for a failed connection whose reason is `reason` (an errno or TLS code), or '' when there is none. */
export function tlsAdvice(reason: string, baseUrl: string): string {
  if (TLS_VERIFY_CODES.has(reason)) {
    return ' — the API certificate is not trusted: pass the cluster CA with --ca FILE (PLINTH_CA) or --data-dir DIR (uses DIR/tls/ca.crt)';
  }
  if (baseUrl.startsWith('http://') && (reason === 'UND_ERR_SOCKET' || reason === 'ECONNRESET' || /other side closed/i.test(reason))) {
    return ' — if the cluster uses TLS, the API speaks HTTPS: use https://';
  }
  return '';
}
