import { PlinthError } from '../../common/plinth-error.js';

/**
 * Why an initiator's bytes could not be understood. Codecs return an
 * IscsiProtocolError instead of throwing so a fuzzer can tell a refusal from
 * a bug; each one costs at most the connection that sent it (invariant 7).
 */
export type IscsiProtocolErrorReason =
  /** A length field is over a limit (data segment, AHS, text). */
  | 'TOO_LARGE'
  /** A field holds a value the RFC does not allow here. */
  | 'BAD_FIELD'
  /** The header digest did not match (RFC 7143 §7.8: the header cannot be trusted). */
  | 'HEADER_DIGEST'
  /** The data digest did not match. */
  | 'DATA_DIGEST'
  /** A PDU the current phase does not allow. */
  | 'UNEXPECTED_PDU'
  /** A text key=value segment is malformed. */
  | 'BAD_TEXT';

export class IscsiProtocolError extends PlinthError {
  readonly reason: IscsiProtocolErrorReason;

  constructor(reason: IscsiProtocolErrorReason, message: string, details: Readonly<Record<string, unknown>> = {}) {
    super('PROTOCOL_ERROR', message, { ...details, reason });
    this.name = 'IscsiProtocolError';
    this.reason = reason;
  }
}
