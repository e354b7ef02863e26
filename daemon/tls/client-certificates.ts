import { PlinthError } from '../../common/plinth-error.js';
import { CA_VALIDITY_DAYS, generateKeyPair, issueClientCert, type IssuedCa } from './x509-issuer.js';

/**
 * NBD client certificates (docs/security.md "NBD"): in a TLS cluster the NBD
 * server admits only clients that present a certificate of the cluster CA
 * (`nbd-tls-client-certs: required`). `plinth tls client-cert NAME` asks any
 * member for one: the member makes a fresh key pair, signs it with the CA
 * key every member holds, and hands back the PEM triple GnuTLS clients
 * (libnbd `tls-certificates=DIR`, qemu `tls-creds-x509`) read from a folder.
 *
 * The key is made on the member because the CLI has no X.509 code of its
 * own; it crosses the network only inside the authenticated HTTPS answer
 * and the member keeps no copy.
 */
export const DEFAULT_CLIENT_CERT_DAYS = 365;
/** Longer than the CA itself would be a certificate that outlives its issuer. */
export const MAX_CLIENT_CERT_DAYS = CA_VALIDITY_DAYS;
/**
 * The common name: a user, host or service. A plain token so it needs no
 * escaping in a distinguished name (RFC 4514 specials are left out).
 */
export const CLIENT_CERT_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

export interface ClientCertificateRequest {
  readonly name: string;
  /** Validity in whole days; default DEFAULT_CLIENT_CERT_DAYS. */
  readonly days?: number;
}

/** What the REST answer carries, PEM each: exactly the three files of a GnuTLS certificate folder. */
export interface ClientCertificateBundle {
  readonly caCert: string;
  readonly clientCert: string;
  readonly clientKey: string;
}

export function validateClientCertificateRequest(request: ClientCertificateRequest): { readonly name: string; readonly days: number } {
  if (!CLIENT_CERT_NAME_PATTERN.test(request.name)) {
    throw new PlinthError('INVALID_NAME', `client certificate name "${request.name.slice(0, 80)}": expected 1-64 of A-Z, a-z, 0-9, ".", "_", "@", "-", starting with a letter or digit`, { field: 'name' });
  }
  const days = request.days ?? DEFAULT_CLIENT_CERT_DAYS;
  if (!Number.isSafeInteger(days) || days < 1 || days > MAX_CLIENT_CERT_DAYS) {
    throw new PlinthError('INVALID_ARGUMENT', `client certificate validity: expected 1 to ${MAX_CLIENT_CERT_DAYS} days, got ${String(days)}`, { field: 'days' });
  }
  return { name: request.name, days };
}

/** A fresh key pair and its clientAuth certificate signed by `ca`. */
export async function issueClientCertificate(ca: IssuedCa, request: ClientCertificateRequest, now: Date = new Date()): Promise<ClientCertificateBundle> {
  const { name, days } = validateClientCertificateRequest(request);
  const keys = await generateKeyPair();
  const clientCert = await issueClientCert(ca, { name, publicKeyPem: keys.publicKeyPem, validityDays: days }, now);
  return { caCert: ca.certPem, clientCert, clientKey: keys.privateKeyPem };
}
