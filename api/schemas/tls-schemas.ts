import { CLIENT_CERT_NAME_PATTERN, DEFAULT_CLIENT_CERT_DAYS, MAX_CLIENT_CERT_DAYS } from '../../daemon/tls/client-certificates.js';

/**
 * Bodies and answers of the TLS routes (api/routes/tls-routes.ts,
 * docs/security.md "NBD" and "Joining"). Closed like every request body.
 */
export const clientCertificateBodySchema = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: {
    name: {
      type: 'string',
      minLength: 1,
      maxLength: 64,
      pattern: CLIENT_CERT_NAME_PATTERN.source,
      description: 'the certificate\'s common name (a user, host or service): 1-64 of A-Z, a-z, 0-9, ".", "_", "@", "-"',
    },
    days: { type: 'integer', minimum: 1, maximum: MAX_CLIENT_CERT_DAYS, description: `validity in days (default ${DEFAULT_CLIENT_CERT_DAYS})` },
  },
} as const;

export interface ClientCertificateBody {
  readonly name: string;
  readonly days?: number;
}

export const clientCertificateResponseSchema = {
  type: 'object',
  required: ['caCert', 'clientCert', 'clientKey'],
  additionalProperties: false,
  description: 'PEM text of a GnuTLS certificate folder: save as ca-cert.pem, client-cert.pem and client-key.pem (0600)',
  properties: {
    caCert: { type: 'string', description: 'the cluster CA certificate' },
    clientCert: { type: 'string', description: 'the client certificate (clientAuth), signed by the cluster CA' },
    clientKey: { type: 'string', description: 'the client\'s private key (PKCS#8); the daemon keeps no copy' },
  },
} as const;

export const joinTokenResponseSchema = {
  type: 'object',
  required: ['token'],
  additionalProperties: false,
  properties: { token: { type: 'string', description: 'the cluster\'s join token (64 hex digits): pass it to a joiner as --join-token or PLINTH_JOIN_TOKEN' } },
} as const;
