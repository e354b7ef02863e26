import {
  commandName,
  NBD_CMD_BLOCK_STATUS,
  NBD_CMD_CACHE,
  NBD_CMD_FLAG_DF,
  NBD_CMD_FLAG_FAST_ZERO,
  NBD_CMD_FLAG_FUA,
  NBD_CMD_FLAG_NO_HOLE,
  NBD_CMD_FLAG_REQ_ONE,
  NBD_CMD_FLUSH,
  NBD_CMD_READ,
  NBD_CMD_TRIM,
  NBD_CMD_WRITE,
  NBD_CMD_WRITE_ZEROES,
  NBD_EINVAL,
  NBD_EPERM,
  type NbdErrno,
  NBD_FLAG_READ_ONLY,
  NBD_FLAG_SEND_CACHE,
  NBD_FLAG_SEND_DF,
  NBD_FLAG_SEND_FAST_ZERO,
  NBD_FLAG_SEND_FUA,
  NBD_FLAG_SEND_TRIM,
  NBD_FLAG_SEND_WRITE_ZEROES,
} from './constants.js';
import { outOfRangeErrno } from './errno-map.js';
import type { BlockSizeInfo } from './handshake-codec.js';
import type { RequestHeader } from './transmission-codec.js';

/**
 * The one check of a request at the edge (nbdkit's validate_request):
 * command advertised, flags allowed, range inside the export, alignment and
 * size within the advertised block sizes. Below this point the same facts
 * are only asserted (BlockDevice implementations throw OUT_OF_RANGE).
 * Errnos follow proto.md "Error values".
 */

export interface ValidationContext {
  readonly sizeBytes: number;
  readonly transmissionFlags: number;
  readonly blockSize: BlockSizeInfo;
  /** Defined when base:allocation was negotiated for this export. */
  readonly blockStatusContextId: number | undefined;
}

export interface RequestRejection {
  readonly errno: NbdErrno;
  readonly message: string;
}

/** NBD_CMD_DISC is not validated: it has no reply and always ends the session. */
export function validateRequest(
  header: RequestHeader,
  context: ValidationContext,
  payloadDiscarded = false,
): RequestRejection | undefined {
  const { type, flags, offset, lengthBytes } = header;
  const name = commandName(type);
  const advertised = context.transmissionFlags;
  const commandError = commandRejection(type, advertised, context.blockStatusContextId);
  if (commandError !== undefined) {
    return commandError;
  }
  const unexpectedFlags = flags & ~allowedFlags(type, advertised);
  if (unexpectedFlags !== 0) {
    return reject(NBD_EINVAL, `${name} with flags 0x${unexpectedFlags.toString(16)} not allowed for this command or export`);
  }
  if (payloadDiscarded) {
    return reject(NBD_EINVAL, `${name} of ${lengthBytes} bytes is over the maximum block size ${context.blockSize.maximumBytes}`);
  }
  if (type === NBD_CMD_FLUSH) {
    // proto.md NBD_CMD_FLUSH: offset and length are reserved and MUST be zero.
    return offset === 0 && lengthBytes === 0 ? undefined : reject(NBD_EINVAL, 'FLUSH with nonzero offset or length');
  }
  if (!Number.isSafeInteger(offset) || offset + lengthBytes > context.sizeBytes) {
    return reject(
      outOfRangeErrno(type),
      `${name} [${offset}, +${lengthBytes}) is beyond the end of the ${context.sizeBytes}-byte export`,
    );
  }
  const { minimumBytes, maximumBytes } = context.blockSize;
  if (offset % minimumBytes !== 0 || lengthBytes % minimumBytes !== 0) {
    return reject(NBD_EINVAL, `${name} [${offset}, +${lengthBytes}) is not aligned to the ${minimumBytes}-byte minimum block size`);
  }
  if (lengthBytes > maximumBytes && isBoundedByMaximumBlockSize(type, flags)) {
    return reject(NBD_EINVAL, `${name} of ${lengthBytes} bytes is over the maximum block size ${maximumBytes}`);
  }
  if (type === NBD_CMD_BLOCK_STATUS && lengthBytes === 0) {
    // A reply needs at least one descriptor of nonzero length; none can describe nothing.
    return reject(NBD_EINVAL, 'BLOCK_STATUS of length 0');
  }
  return undefined;
}

function reject(errno: NbdErrno, message: string): RequestRejection {
  return { errno, message };
}

/** Is the command known, advertised and allowed on this export? */
function commandRejection(
  type: number,
  advertised: number,
  blockStatusContextId: number | undefined,
): RequestRejection | undefined {
  const writes = type === NBD_CMD_WRITE || type === NBD_CMD_TRIM || type === NBD_CMD_WRITE_ZEROES;
  // proto.md: EPERM for a write, trim or write-zeroes on a read-only export.
  if (writes && (advertised & NBD_FLAG_READ_ONLY) !== 0) {
    return reject(NBD_EPERM, `${commandName(type)} on a read-only export`);
  }
  switch (type) {
    case NBD_CMD_READ:
    case NBD_CMD_WRITE:
    case NBD_CMD_FLUSH:
      return undefined;
    case NBD_CMD_TRIM:
      return requireFlag(type, advertised, NBD_FLAG_SEND_TRIM);
    case NBD_CMD_WRITE_ZEROES:
      return requireFlag(type, advertised, NBD_FLAG_SEND_WRITE_ZEROES);
    case NBD_CMD_CACHE:
      return requireFlag(type, advertised, NBD_FLAG_SEND_CACHE);
    case NBD_CMD_BLOCK_STATUS:
      // proto.md: EINVAL for BLOCK_STATUS without a selected metadata context.
      return blockStatusContextId === undefined
        ? reject(NBD_EINVAL, 'BLOCK_STATUS without base:allocation negotiated for this export')
        : undefined;
    default:
      return reject(NBD_EINVAL, `unknown command ${type}`);
  }
}

function requireFlag(type: number, advertised: number, flag: number): RequestRejection | undefined {
  return (advertised & flag) !== 0 ? undefined : reject(NBD_EINVAL, `${commandName(type)} is not supported by this export`);
}

/** proto.md "Command flags": which flags each command may carry, given what we advertised. */
function allowedFlags(type: number, advertised: number): number {
  // FUA is valid on every command once SEND_FUA is advertised (the server MUST accept it).
  let allowed = (advertised & NBD_FLAG_SEND_FUA) !== 0 ? NBD_CMD_FLAG_FUA : 0;
  if (type === NBD_CMD_READ && (advertised & NBD_FLAG_SEND_DF) !== 0) {
    allowed |= NBD_CMD_FLAG_DF;
  } else if (type === NBD_CMD_WRITE_ZEROES) {
    allowed |= NBD_CMD_FLAG_NO_HOLE;
    if ((advertised & NBD_FLAG_SEND_FAST_ZERO) !== 0) allowed |= NBD_CMD_FLAG_FAST_ZERO;
  } else if (type === NBD_CMD_BLOCK_STATUS) {
    allowed |= NBD_CMD_FLAG_REQ_ONE;
  }
  return allowed;
}

/** proto.md: the maximum block size binds READ, WRITE, CACHE and WRITE_ZEROES without FAST_ZERO. */
function isBoundedByMaximumBlockSize(type: number, flags: number): boolean {
  if (type === NBD_CMD_WRITE_ZEROES) {
    return (flags & NBD_CMD_FLAG_FAST_ZERO) === 0;
  }
  return type === NBD_CMD_READ || type === NBD_CMD_WRITE || type === NBD_CMD_CACHE;
}
