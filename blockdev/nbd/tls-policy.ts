import {
  NBD_OPT_ABORT,
  NBD_OPT_EXPORT_NAME,
  NBD_OPT_STARTTLS,
  NBD_REP_ERR_INVALID,
  NBD_REP_ERR_POLICY,
  NBD_REP_ERR_TLS_REQD,
  optionName,
} from './constants.js';

/**
 * Which options the TLS rules of proto.md "TLS support" let through, as a
 * pure decision over (mode, state, option). The handshake asks it first for
 * every option; the connection shell does the actual socket upgrade.
 *
 * Modes (proto.md "Server-side requirements"):
 * - 'none'     NOTLS: STARTTLS gets NBD_REP_ERR_POLICY (we know the option
 *              but have no certificate); never NBD_REP_ERR_TLS_REQD.
 * - 'optional' the degenerate SELECTIVETLS with no TLS-only export: a client
 *              may upgrade whenever it likes, or never.
 * - 'required' FORCEDTLS: every option but STARTTLS and ABORT gets
 *              NBD_REP_ERR_TLS_REQD until TLS is up, so no export name,
 *              size or description is ever sent in clear; EXPORT_NAME
 *              cannot be errored and closes the session instead.
 */

export type NbdTlsMode = 'none' | 'optional' | 'required';

export interface TlsNegotiationState {
  readonly mode: NbdTlsMode;
  /** STARTTLS was acknowledged on this connection: everything since runs over TLS. */
  readonly tlsActive: boolean;
  /**
   * The client set NBD_FLAG_C_FIXED_NEWSTYLE. proto.md: "The server MUST
   * operate in NOTLS mode unless the server set NBD_FLAG_FIXED_NEWSTYLE and
   * the client replied with NBD_FLAG_C_FIXED_NEWSTYLE".
   */
  readonly fixedNewstyle: boolean;
}

export type TlsGate =
  /** Handle the option normally. */
  | { readonly kind: 'proceed' }
  /** Reply with this error and go on negotiating. */
  | { readonly kind: 'refuse'; readonly errorType: number; readonly message: string }
  /** Terminate the session without a reply (EXPORT_NAME cannot be errored). */
  | { readonly kind: 'close'; readonly reason: string }
  /** Reply NBD_REP_ACK, then upgrade the socket to TLS. */
  | { readonly kind: 'starttls' };

const PROCEED: TlsGate = Object.freeze({ kind: 'proceed' });

export function tlsGate(state: TlsNegotiationState, option: number, dataBytes: number): TlsGate {
  if (option === NBD_OPT_STARTTLS) {
    return startTlsGate(state, dataBytes);
  }
  if (state.mode !== 'required' || state.tlsActive || option === NBD_OPT_ABORT) {
    return PROCEED;
  }
  if (option === NBD_OPT_EXPORT_NAME) {
    // proto.md FORCEDTLS: "as this request cannot error, it MUST terminate the session".
    return { kind: 'close', reason: 'NBD_OPT_EXPORT_NAME before STARTTLS on a TLS-only server' };
  }
  if (!state.fixedNewstyle) {
    // Without fixed newstyle we must act as NOTLS, which forbids TLS_REQD; policy forbids plain text.
    const message = `TLS is required and needs NBD_FLAG_C_FIXED_NEWSTYLE; ${optionName(option)} refused`;
    return { kind: 'refuse', errorType: NBD_REP_ERR_POLICY, message };
  }
  return {
    kind: 'refuse',
    errorType: NBD_REP_ERR_TLS_REQD,
    message: `TLS is required: send NBD_OPT_STARTTLS before ${optionName(option)}`,
  };
}

function startTlsGate(state: TlsNegotiationState, dataBytes: number): TlsGate {
  if (state.mode === 'none') {
    return { kind: 'refuse', errorType: NBD_REP_ERR_POLICY, message: 'this server has no TLS configured' };
  }
  if (state.tlsActive) {
    // proto.md FORCEDTLS/SELECTIVETLS: STARTTLS after TLS "MUST reply with NBD_REP_ERR_INVALID".
    return { kind: 'refuse', errorType: NBD_REP_ERR_INVALID, message: 'TLS is already active' };
  }
  if (dataBytes !== 0) {
    return { kind: 'refuse', errorType: NBD_REP_ERR_INVALID, message: 'NBD_OPT_STARTTLS carries no data' };
  }
  if (!state.fixedNewstyle) {
    return {
      kind: 'refuse',
      errorType: NBD_REP_ERR_POLICY,
      message: 'NBD_OPT_STARTTLS needs NBD_FLAG_C_FIXED_NEWSTYLE',
    };
  }
  return { kind: 'starttls' };
}
