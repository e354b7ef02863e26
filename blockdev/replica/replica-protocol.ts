import { PlinthError } from '../../common/plinth-error.js';

/**
 * Constants and message shapes of the replication protocol spoken on the
 * peer port between a volume's owner (the controller, via RemoteReplica) and
 * the replica servers of the other nodes.
 *
 * Every frame is a 4-byte big-endian length followed by that many bytes.
 *
 * Request (client → server), all integers big-endian:
 *
 * | bytes | field                                                   |
 * | ----- | ------------------------------------------------------- |
 * | 4     | magic `PLRQ`                                            |
 * | 1     | protocol version (3)                                    |
 * | 1     | opcode                                                  |
 * | 2     | flags                                                   |
 * | 8     | request id (< 2^53)                                     |
 * | 8     | generation (< 2^53): the volume's attach generation    |
 * | 8     | offset in bytes (OPEN: unused; GET_DIRTY: marker start) |
 * | 8     | length in bytes (OPEN: volume size)                     |
 * | 1     | volume id length N (0 for HELLO and PING)              |
 * | N     | volume id, UTF-8                                        |
 * | rest  | payload: WRITE data, HELLO handshake, GET_DIRTY marker, |
 * |       | snapshot reference (snapshot-payloads.ts)               |
 *
 * Reply (server → client), completion order, matched by request id:
 *
 * | bytes | field                                  |
 * | ----- | -------------------------------------- |
 * | 4     | magic `PLRS`                           |
 * | 8     | request id                             |
 * | 1     | status                                 |
 * | rest  | payload: READ data, op answer, or an error message (UTF-8) |
 */

export const REQUEST_MAGIC = 0x504c5251; // "PLRQ"
export const REPLY_MAGIC = 0x504c5253; // "PLRS"
/**
 * 2: MARK_REPAIRED added (issue 7); 3: the snapshot ops (issue 8). A peer of
 * another version is refused at its first frame.
 */
export const PROTOCOL_VERSION = 3;
export const FRAME_LENGTH_BYTES = 4;
export const REQUEST_HEADER_BYTES = 41;
export const REPLY_HEADER_BYTES = 13;
export const MAX_VOLUME_ID_BYTES = 255;
/** Error messages in replies are cut to this many bytes. */
export const MAX_ERROR_MESSAGE_BYTES = 1024;
/** Largest READ/WRITE a frame may carry; also the default frame bound. */
export const DEFAULT_MAX_IO_BYTES = 8 * 1024 * 1024;
/** Room in a frame for headers, volume id and small payloads on top of the data. */
export const FRAME_OVERHEAD_BYTES = 4096;

export const Opcode = {
  HELLO: 1,
  OPEN: 2,
  READ: 3,
  WRITE: 4,
  FLUSH: 5,
  TRIM: 6,
  WRITE_ZEROES: 7,
  BLOCK_STATUS: 8,
  /** Regions changed since a marker: delta resync of a replica that was out of the in-sync set. */
  GET_DIRTY: 9,
  PING: 10,
  /** Regions of the activity log (writes possibly in flight): failover resync, invariant 4. */
  GET_ACTIVITY: 11,
  /**
   * The owner made this replica identical to a good source (a failover
   * resync copied to it, or a rebuild caught it up): it clears its durable
   * "may lack acknowledged writes" flag for the volume (issue 7;
   * replica-service.ts). No payload.
   */
  MARK_REPAIRED: 12,
  /*
   * Issue 8 (docs/snapshots.md "Replica protocol"): generation-checked like
   * every request; the payload names the snapshot (snapshot-payloads.ts).
   * They run on the pool directly and never touch the WRITE/READ path.
   */
  /** pool.createSnapshot of the volume; the owner paused and drained writes first. Repeating it is a no-op. */
  SNAPSHOT_CREATE: 13,
  /** pool.deleteSnapshot (closing this server's read handle first); unknown: no-op. */
  SNAPSHOT_DELETE: 14,
  /** Read [offset, +length) of a snapshot: exports on a non-holder node, send streams. */
  SNAPSHOT_READ: 15,
  /** pool.revertVolume: detached volumes only (the replica closes its store first). */
  REVERT: 16,
  /** pool.cloneVolume from a snapshot into a new volume id; length = the clone's size. */
  CLONE: 17,
} as const;
export type Opcode = (typeof Opcode)[keyof typeof Opcode];
const OPCODES: ReadonlySet<number> = new Set(Object.values(Opcode));

export function isOpcode(value: number): value is Opcode {
  return OPCODES.has(value);
}

export const RequestFlag = {
  /** WRITE/TRIM/WRITE_ZEROES: durable before the reply (NBD proto.md NBD_CMD_FLAG_FUA). */
  FUA: 1 << 0,
  /** WRITE_ZEROES: keep the range allocated. */
  NO_HOLE: 1 << 1,
  /** WRITE_ZEROES: fail with NOT_SUPPORTED unless zeroing is fast. */
  FAST_ZERO: 1 << 2,
  /** HELLO: this is the dialer's proof (second step), not its greeting. */
  HELLO_PROOF: 1 << 8,
} as const;
export const KNOWN_FLAGS = RequestFlag.FUA | RequestFlag.NO_HOLE | RequestFlag.FAST_ZERO | RequestFlag.HELLO_PROOF;

export const Status = {
  OK: 0,
  /** The request's generation is lower than the highest this replica has seen (invariant 3). */
  FENCED: 1,
  IO_ERROR: 2,
  OUT_OF_RANGE: 3,
  INVALID_ARGUMENT: 4,
  NOT_SUPPORTED: 5,
  NO_SPACE: 6,
  /** The volume was not OPENed on this connection. */
  NOT_OPEN: 7,
  UNAUTHORIZED: 8,
  BUSY: 9,
  SHUTTING_DOWN: 10,
  TOO_LARGE: 11,
  // Issue 8: the pool's answers to the snapshot ops, kept apart so the caller sees the same code.
  SNAPSHOT_NOT_FOUND: 12,
  VOLUME_NOT_FOUND: 13,
  VOLUME_ATTACHED: 14,
  VOLUME_EXISTS: 15,
  SNAPSHOT_OPEN: 16,
  SNAPSHOT_LIMIT: 17,
} as const;
export type Status = (typeof Status)[keyof typeof Status];
const STATUSES: ReadonlySet<number> = new Set(Object.values(Status));

export function isStatus(value: number): value is Status {
  return STATUSES.has(value);
}

export interface ReplicaRequest {
  readonly opcode: Opcode;
  readonly flags: number;
  readonly requestId: number;
  readonly generation: number;
  readonly offset: number;
  readonly lengthBytes: number;
  readonly volumeId: string;
  readonly payload: Buffer;
}

export interface ReplicaReply {
  readonly requestId: number;
  readonly status: Status;
  readonly payload: Buffer;
}

export type ReplicaProtocolErrorReason =
  | 'BAD_MAGIC'
  | 'BAD_VERSION'
  | 'BAD_OPCODE'
  | 'BAD_FLAGS'
  | 'BAD_STATUS'
  | 'BAD_LENGTH'
  | 'BAD_NUMBER'
  | 'BAD_STRING'
  | 'TRUNCATED'
  | 'FRAME_TOO_LARGE'
  | 'UNEXPECTED';

/**
 * Why bytes from a peer could not be understood. Costs only the connection
 * that sent them (invariant 7). Codecs return it instead of throwing so a
 * fuzzer can tell a refusal from a bug.
 */
export class ReplicaProtocolError extends PlinthError {
  readonly reason: ReplicaProtocolErrorReason;

  constructor(reason: ReplicaProtocolErrorReason, message: string, details: Readonly<Record<string, unknown>> = {}) {
    super('PROTOCOL_ERROR', `replication protocol: ${message}`, { ...details, reason });
    this.name = 'ReplicaProtocolError';
    this.reason = reason;
  }
}

export function maxFrameBytesFor(maxIoBytes: number): number {
  return maxIoBytes + FRAME_OVERHEAD_BYTES;
}
