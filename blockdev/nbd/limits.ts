import { PlinthError } from '../../common/plinth-error.js';

/**
 * Every bound the NBD server keeps (STYLE "A limit on everything"). One
 * misbehaving client can cost at most these amounts, and only on its own
 * connection.
 */
export interface NbdLimits {
  /**
   * Largest READ/WRITE/CACHE/WRITE_ZEROES length accepted, and the cap on the
   * advertised maximum block size. proto.md "Block size constraints": lengths
   * below 2^25 SHOULD NOT be treated as denial of service, so 32 MiB.
   */
  readonly maxPayloadBytes: number;
  /**
   * A WRITE longer than maxPayloadBytes but at most this long has its payload
   * read and thrown away so the stream stays in sync and the client gets
   * EINVAL; anything longer ends the connection (proto.md allows a hard
   * disconnect for a write payload "large enough to be deemed a denial of service").
   */
  readonly maxDiscardedWriteBytes: number;
  /** Requests being served at once on one connection; reading pauses above it. */
  readonly maxInFlightRequests: number;
  /** Request + reply data bytes held for one connection; reading pauses above it. */
  readonly maxInFlightBytes: number;
  /** Largest option data accepted in the handshake; beyond it NBD_REP_ERR_TOO_BIG and close. */
  readonly maxOptionDataBytes: number;
  /** Options one connection may send before it is considered a denial of service. */
  readonly maxOptionsPerHandshake: number;
  /** NBD_OPT_LIST answers at most this many exports. */
  readonly maxListedExports: number;
  /** Descriptors in one NBD_REPLY_TYPE_BLOCK_STATUS chunk (proto.md lets us return fewer). */
  readonly maxBlockStatusExtents: number;
  /** Open connections on one server; further ones are refused by the kernel accept queue. */
  readonly maxConnections: number;
  /** A client that has not entered transmission within this time is dropped. */
  readonly handshakeTimeoutMs: number;
  /** After we end our side, the client has this long to take the last replies before the socket is destroyed. */
  readonly closeLingerMs: number;
}

export const DEFAULT_NBD_LIMITS: NbdLimits = Object.freeze({
  maxPayloadBytes: 32 * 1024 * 1024,
  maxDiscardedWriteBytes: 64 * 1024 * 1024,
  maxInFlightRequests: 128,
  maxInFlightBytes: 64 * 1024 * 1024,
  maxOptionDataBytes: 64 * 1024,
  maxOptionsPerHandshake: 1024,
  maxListedExports: 10_000,
  maxBlockStatusExtents: 1024,
  maxConnections: 1024,
  handshakeTimeoutMs: 30_000,
  closeLingerMs: 30_000,
});

/** Largest READ a structured reply can carry in one OFFSET_DATA chunk. */
const MAX_PAYLOAD_CEILING_BYTES = 0xffffffff - 8;

export function resolveNbdLimits(overrides: Partial<NbdLimits> = {}): NbdLimits {
  const limits: NbdLimits = { ...DEFAULT_NBD_LIMITS, ...overrides };
  for (const [name, value] of Object.entries(limits)) {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
      throw new PlinthError('CONFIG_INVALID', `NBD limit ${name} must be a positive integer, got ${String(value)}`, {
        name,
        value,
      });
    }
  }
  if (limits.maxPayloadBytes > MAX_PAYLOAD_CEILING_BYTES) {
    throw new PlinthError('CONFIG_INVALID', `NBD limit maxPayloadBytes must be at most ${MAX_PAYLOAD_CEILING_BYTES}`, {
      maxPayloadBytes: limits.maxPayloadBytes,
    });
  }
  if (limits.maxDiscardedWriteBytes < limits.maxPayloadBytes) {
    throw new PlinthError('CONFIG_INVALID', 'NBD limit maxDiscardedWriteBytes must be at least maxPayloadBytes', {
      maxDiscardedWriteBytes: limits.maxDiscardedWriteBytes,
      maxPayloadBytes: limits.maxPayloadBytes,
    });
  }
  return Object.freeze(limits);
}
