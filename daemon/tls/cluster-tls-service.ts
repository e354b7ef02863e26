import type { ClientCertificateBundle, ClientCertificateRequest } from './client-certificates.js';

/**
 * What the REST API sees of a node's TLS (api/routes/tls-routes.ts,
 * cluster-routes.ts `join-token`). NodeTls implements it; a plain cluster
 * answers both with a clear refusal rather than not serving the routes, so
 * an operator learns why.
 */
export interface ClusterTlsService {
  /**
   * The cluster's join token (`<data-dir>/join-token`) for `plinth cluster
   * join-token`. NOT_FOUND in a plain cluster: plain joins need no token.
   * A secret: callers must never log it.
   */
  requireJoinToken(): string;
  /**
   * A new NBD client key and certificate signed by the cluster CA.
   * CONFIG_INVALID in a plain cluster and on a node with operator
   * certificates (it holds no CA key); INVALID_NAME / INVALID_ARGUMENT for
   * a bad name or validity.
   */
  issueClientCertificate(request: ClientCertificateRequest): Promise<ClientCertificateBundle>;
}
