/**
 * The one base error of Plinth. Every error that crosses a module boundary is
 * a PlinthError with a stable `code` and typed `details`, so each boundary
 * (NBD errno, SCSI sense, HTTP status) maps errors by code in one table
 * instead of matching message strings.
 */
export type PlinthErrorCode =
  // data path
  | 'OUT_OF_RANGE'
  | 'NO_SPACE'
  | 'IO_ERROR'
  | 'READ_ONLY'
  | 'NOT_SUPPORTED'
  | 'INVALID_ARGUMENT'
  | 'TOO_LARGE'
  | 'SHUTTING_DOWN'
  // pool / disks
  | 'DISK_FOREIGN'
  | 'DISK_CORRUPT'
  | 'DISK_WRONG_POOL'
  | 'DISK_MISSING'
  // control plane
  | 'VOLUME_NOT_FOUND'
  | 'VOLUME_EXISTS'
  | 'VOLUME_ATTACHED'
  | 'INVALID_NAME'
  | 'INVALID_SIZE'
  | 'CONFIG_INVALID'
  | 'DATA_DIR_LOCKED'
  | 'UNAUTHORIZED'
  | 'NOT_LEADER'
  | 'TIMEOUT'
  | 'FENCED'
  | 'INTERNAL'
  // consensus transport: a peer sent a malformed or oversized frame
  | 'BAD_FRAME'
  // REST API edge (api/): request-level failures that never reach the control plane
  | 'INVALID_JSON'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'BODY_TOO_LARGE'
  | 'NOT_FOUND'
  // raft core (consensus/raft): proposal refused by the leader's limits or rules
  | 'RAFT_PROPOSAL_DROPPED'
  | 'RAFT_CONF_CHANGE_PENDING'
  | 'RAFT_TRANSFER_IN_PROGRESS'
  | 'RAFT_LEARNER_BEHIND'
  | 'RAFT_SNAPSHOT_INVALID'
  // wire protocol codecs (blockdev/nbd, blockdev/iscsi): malformed, oversized
  // or unexpected message from a client; `details.reason` says which
  | 'PROTOCOL_ERROR'
  // daemon: a bounded queue (command log, per-volume connections) is full; retry later
  | 'BUSY'
  // pool metadata (blockdev/pool): an entry in the pool's level store is unreadable or inconsistent
  | 'METADATA_CORRUPT'
  // cluster state (daemon/state): a node id that is not a member
  | 'NODE_NOT_FOUND'
  // cluster state: the change would leave a volume without an in-sync replica (invariant 4)
  | 'LAST_IN_SYNC_REPLICA'
  // cluster state / failover (issue 7): no replica holding the volume's latest data
  // generation is reachable; the volume stays unavailable rather than serve stale data
  | 'NO_CURRENT_REPLICA'
  // snapshots (issue 8, blockdev/pool): unknown snapshot id; a snapshot still open as a device blocks its
  // deletion; the volume already has the most snapshots a pool keeps per volume
  | 'SNAPSHOT_NOT_FOUND'
  | 'SNAPSHOT_OPEN'
  | 'SNAPSHOT_LIMIT'
  // send/receive streams (issue 8, daemon/snapshots/send-stream-*): what is wrong with a stream; `details` says where
  | 'STREAM_BAD_MAGIC'
  | 'STREAM_BAD_VERSION'
  | 'STREAM_MALFORMED'
  | 'STREAM_CHECKSUM_MISMATCH'
  | 'STREAM_TRUNCATED'
  | 'STREAM_OUT_OF_ORDER'
  | 'STREAM_OUT_OF_RANGE'
  // receive (issue 8): the stream does not fit the target (wrong base, another receive in progress, resume mismatch)
  | 'RECEIVE_CONFLICT'
  // cluster snapshots (issue 8, daemon/snapshots): a snapshot of that name already exists on the volume
  | 'SNAPSHOT_EXISTS';

export class PlinthError extends Error {
  readonly code: PlinthErrorCode;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: PlinthErrorCode,
    message: string,
    details: Readonly<Record<string, unknown>> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'PlinthError';
    this.code = code;
    this.details = details;
  }
}

export function isPlinthError(err: unknown, code?: PlinthErrorCode): err is PlinthError {
  return err instanceof PlinthError && (code === undefined || err.code === code);
}

/** Narrow an unknown thrown value to an Error so it can be logged or wrapped. */
export function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
