import type { Socket } from 'node:net';
import { type SecureContext, TLSSocket } from 'node:tls';
import type { NbdTlsMode } from './tls-policy.js';

/**
 * The socket half of NBD_OPT_STARTTLS (proto.md "TLS support"): after the
 * NBD_REP_ACK has reached the kernel, the same TCP connection is wrapped in
 * a server-side TLS session and option haggling goes on over it. The
 * decision of when that is allowed is tls-policy.ts; this is only I/O.
 */

/** What the daemon hands the NBD server: the node certificate, and whether plain text is refused. */
export interface NbdTlsOptions {
  /** Server certificate and key (and CA chain) presented to NBD clients. */
  readonly secureContext: SecureContext;
  /** FORCEDTLS: nothing but STARTTLS and ABORT is answered before TLS is up. */
  readonly required: boolean;
  /**
   * Demand a client certificate that chains to the CA in `secureContext`
   * (the cluster CA): only holders of a certificate it signed may connect.
   * Off, TLS protects the export in transit but anyone may open it.
   */
  readonly verifyClients?: boolean;
}

export function tlsModeOf(tls: NbdTlsOptions | undefined): NbdTlsMode {
  if (tls === undefined) {
    return 'none';
  }
  return tls.required ? 'required' : 'optional';
}

/**
 * Wrap an accepted TCP socket whose NBD_REP_ACK to STARTTLS is written.
 * Node takes over the socket's handle, and bytes the socket had already
 * read but not delivered (the start of the ClientHello) are fed to TLS.
 * The caller must have removed its own listeners from `plain` and read
 * nothing from it since the STARTTLS option.
 *
 * With `verifyClients`, a client without a certificate the CA signed fails
 * the TLS handshake itself, before any option is read.
 */
export function upgradeToServerTls(plain: Socket, tls: NbdTlsOptions): TLSSocket {
  const verify = tls.verifyClients === true;
  return new TLSSocket(plain, { isServer: true, secureContext: tls.secureContext, requestCert: verify, rejectUnauthorized: verify });
}
