import { PlinthError } from '../../common/plinth-error.js';

/**
 * Why a client's bytes could not be understood. Each reason ends only the
 * connection that sent them (ARCHITECTURE invariant 7); the codecs return a
 * ProtocolError instead of throwing so a fuzzer can tell a refusal from a bug.
 */
export type NbdProtocolErrorReason =
  /** A magic number (IHAVEOPT, request magic) did not match. */
  | 'BAD_MAGIC'
  /** The client set client flags we did not advertise (proto.md "Client flags": MUST drop). */
  | 'BAD_CLIENT_FLAGS'
  /** A length field disagrees with the data around it. */
  | 'BAD_LENGTH'
  /** Option data over limits.maxOptionDataBytes. */
  | 'OPTION_TOO_LARGE'
  /** WRITE payload too large to receive or to skip safely. */
  | 'PAYLOAD_TOO_LARGE'
  /** A message ended before its fixed fields did. */
  | 'TRUNCATED'
  /** A string is not valid UTF-8, contains NUL or is over 4096 bytes. */
  | 'BAD_STRING'
  /** A reply the client-side decoder did not expect (tests and tools only). */
  | 'UNEXPECTED_REPLY';

export class ProtocolError extends PlinthError {
  readonly reason: NbdProtocolErrorReason;

  constructor(reason: NbdProtocolErrorReason, message: string, details: Readonly<Record<string, unknown>> = {}) {
    super('PROTOCOL_ERROR', message, { ...details, reason });
    this.name = 'ProtocolError';
    this.reason = reason;
  }
}

export function isProtocolError(value: unknown): value is ProtocolError {
  return value instanceof ProtocolError;
}
