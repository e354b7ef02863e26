import { isIP } from 'node:net';

/**
 * The `tls` setting (docs/security.md "Modes"): `on` forces TLS, `off`
 * forbids it, `auto` (the default) turns it on for a new cluster when any
 * listen address of the node is reachable from another host. Plain text
 * stays only for the loopback-only default. The decision is made once, at
 * bootstrap; afterwards the data dir says (tls/ca.crt present or not) and a
 * joiner adopts the cluster's choice.
 */
export const TLS_MODES = ['auto', 'on', 'off'] as const;
export type TlsMode = (typeof TLS_MODES)[number];

export const NBD_TLS_MODES = ['required', 'optional'] as const;
export type NbdTlsMode = (typeof NBD_TLS_MODES)[number];

/** `nbd-tls-client-certs`: whether NBD clients must present a certificate of the cluster CA (docs/security.md "NBD"). */
export const NBD_CLIENT_CERT_MODES = ['required', 'off'] as const;
export type NbdClientCertMode = (typeof NBD_CLIENT_CERT_MODES)[number];

export interface TlsSettings {
  readonly mode: TlsMode;
  /** Operator-provided certificates: all three or none (config validation). */
  readonly certFile: string | null;
  readonly keyFile: string | null;
  readonly caFile: string | null;
  /** With TLS on: whether an NBD client may skip NBD_OPT_STARTTLS. */
  readonly nbd: NbdTlsMode;
  /** With TLS on: `required` refuses NBD clients without a certificate the cluster CA signed. */
  readonly nbdClientCerts: NbdClientCertMode;
}

export const DEFAULT_TLS_SETTINGS: TlsSettings = { mode: 'auto', certFile: null, keyFile: null, caFile: null, nbd: 'required', nbdClientCerts: 'required' };

export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (bare === 'localhost' || bare === '::1') return true;
  if (isIP(bare) === 4) return bare.startsWith('127.');
  if (bare.startsWith('::ffff:')) return bare.slice('::ffff:'.length).startsWith('127.');
  return false;
}

/** Whether a new cluster bootstrapped by this node uses TLS, and why (for the start-up log). */
export function tlsForNewCluster(settings: TlsSettings, listenHosts: readonly string[]): { readonly on: boolean; readonly reason: string } {
  if (settings.mode === 'on') return { on: true, reason: 'tls=on' };
  if (settings.mode === 'off') return { on: false, reason: 'tls=off' };
  if (settings.certFile !== null) return { on: true, reason: 'tls=auto with operator certificates' };
  const exposed = listenHosts.find((host) => !isLoopbackHost(host));
  return exposed === undefined
    ? { on: false, reason: 'tls=auto and every listen address is loopback' }
    : { on: true, reason: `tls=auto and ${exposed} is not a loopback address` };
}
