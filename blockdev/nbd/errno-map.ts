import { isPlinthError, type PlinthErrorCode } from '../../common/plinth-error.js';
import {
  NBD_CMD_WRITE,
  NBD_CMD_WRITE_ZEROES,
  NBD_EINVAL,
  NBD_EIO,
  NBD_ENOSPC,
  NBD_ENOTSUP,
  NBD_EPERM,
  NBD_ESHUTDOWN,
  type NbdErrno,
  NBD_REP_ERR_INVALID,
  NBD_REP_ERR_POLICY,
  NBD_REP_ERR_SHUTDOWN,
  NBD_REP_ERR_UNKNOWN,
} from './constants.js';

/**
 * The NBD boundary's two error tables (STYLE habit 6: one table per
 * boundary): PlinthError code -> transmission errno, and -> option reply
 * error. Anything not listed is EIO / NBD_REP_ERR_UNKNOWN and the caller logs it.
 */

/**
 * proto.md "Error values": ENOSPC for a write or write-zeroes beyond the
 * end, EINVAL for a read/trim/block-status beyond it; EPERM for writes on a
 * read-only export; EOVERFLOW only for DF reads and ENOTSUP only for
 * FAST_ZERO, so TOO_LARGE is EINVAL ("larger than the advertised maximum
 * block size") and NOT_SUPPORTED elsewhere is EINVAL too.
 */
const ERRNO_BY_CODE: Partial<Record<PlinthErrorCode, NbdErrno>> = {
  OUT_OF_RANGE: NBD_EINVAL,
  INVALID_ARGUMENT: NBD_EINVAL,
  TOO_LARGE: NBD_EINVAL,
  NOT_SUPPORTED: NBD_EINVAL,
  NO_SPACE: NBD_ENOSPC,
  IO_ERROR: NBD_EIO,
  READ_ONLY: NBD_EPERM,
  SHUTTING_DOWN: NBD_ESHUTDOWN,
  // A fenced former owner must not pretend the write failed for a reason the
  // client can fix; the client retries on the new owner after ESHUTDOWN.
  FENCED: NBD_ESHUTDOWN,
};

export interface ErrnoMapping {
  readonly errno: NbdErrno;
  /** False when the code is not in the table: the caller should log it as unexpected. */
  readonly expected: boolean;
}

/** The errno for an error a BlockDevice call threw while serving `command`. */
export function errnoForError(error: unknown, command: number, fastZero = false): ErrnoMapping {
  if (!isPlinthError(error)) {
    return { errno: NBD_EIO, expected: false };
  }
  if (error.code === 'OUT_OF_RANGE' && isWriteCommand(command)) {
    return { errno: NBD_ENOSPC, expected: true };
  }
  if (error.code === 'NOT_SUPPORTED' && command === NBD_CMD_WRITE_ZEROES && fastZero) {
    return { errno: NBD_ENOTSUP, expected: true };
  }
  const errno = ERRNO_BY_CODE[error.code];
  return errno === undefined ? { errno: NBD_EIO, expected: false } : { errno, expected: true };
}

/** proto.md: writes beyond the end get ENOSPC, other commands EINVAL. */
export function outOfRangeErrno(command: number): NbdErrno {
  return isWriteCommand(command) ? NBD_ENOSPC : NBD_EINVAL;
}

function isWriteCommand(command: number): boolean {
  return command === NBD_CMD_WRITE || command === NBD_CMD_WRITE_ZEROES;
}

/**
 * Option reply error for a failed describeExport/openExport/listExports.
 * proto.md: NBD_REP_ERR_UNKNOWN "the requested export is not available";
 * NBD_REP_ERR_POLICY "known and valid but policy forbids"; SHUTDOWN while
 * the server goes down.
 */
const OPTION_ERROR_BY_CODE: Partial<Record<PlinthErrorCode, number>> = {
  VOLUME_NOT_FOUND: NBD_REP_ERR_UNKNOWN,
  INVALID_NAME: NBD_REP_ERR_UNKNOWN,
  VOLUME_ATTACHED: NBD_REP_ERR_POLICY,
  // The per-volume connection limit (or another bounded queue) is full.
  BUSY: NBD_REP_ERR_POLICY,
  FENCED: NBD_REP_ERR_POLICY,
  NOT_LEADER: NBD_REP_ERR_POLICY,
  // Only stale replicas are reachable: the volume is unavailable, never served stale.
  NO_CURRENT_REPLICA: NBD_REP_ERR_POLICY,
  UNAUTHORIZED: NBD_REP_ERR_POLICY,
  INVALID_ARGUMENT: NBD_REP_ERR_INVALID,
  SHUTTING_DOWN: NBD_REP_ERR_SHUTDOWN,
};

export interface OptionErrorMapping {
  readonly replyType: number;
  readonly expected: boolean;
}

export function optionErrorForError(error: unknown): OptionErrorMapping {
  if (!isPlinthError(error)) {
    return { replyType: NBD_REP_ERR_UNKNOWN, expected: false };
  }
  const replyType = OPTION_ERROR_BY_CODE[error.code];
  return replyType === undefined
    ? { replyType: NBD_REP_ERR_UNKNOWN, expected: false }
    : { replyType, expected: true };
}
