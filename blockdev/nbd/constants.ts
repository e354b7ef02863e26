/**
 * Wire constants of the NBD protocol, named as in NetworkBlockDevice/nbd
 * `doc/proto.md` (sections "Values", "Handshake phase", "Transmission phase").
 * Every number the codecs put on or read from the wire lives here.
 */

// --- Magic numbers (proto.md "Newstyle negotiation", "Request message", replies)

/** 'NBDMAGIC', the INIT_PASSWD that opens every handshake. */
export const NBD_INIT_MAGIC = 0x4e42444d41474943n;
/** 'IHAVEOPT': the newstyle magic, also the prefix of every client option. */
export const NBD_OPTS_MAGIC = 0x49484156454f5054n;
/** Prefix of every fixed-newstyle option reply. */
export const NBD_REP_MAGIC = 0x3e889045565a9n;
export const NBD_REQUEST_MAGIC = 0x25609513;
export const NBD_SIMPLE_REPLY_MAGIC = 0x67446698;
export const NBD_STRUCTURED_REPLY_MAGIC = 0x668e33ef;

// --- Sizes of fixed-layout messages, in bytes

export const SERVER_GREETING_BYTES = 18; // magic u64, magic u64, handshake flags u16
export const CLIENT_FLAGS_BYTES = 4;
export const OPTION_HEADER_BYTES = 16; // magic u64, option u32, length u32
export const OPTION_REPLY_HEADER_BYTES = 20; // magic u64, option u32, type u32, length u32
export const EXPORT_NAME_REPLY_BYTES = 10; // size u64, transmission flags u16
export const EXPORT_NAME_REPLY_ZEROES_BYTES = 124;
export const REQUEST_HEADER_BYTES = 28; // magic, flags, type, handle, offset, length
export const SIMPLE_REPLY_HEADER_BYTES = 16; // magic, error, handle
export const STRUCTURED_REPLY_HEADER_BYTES = 20; // magic, flags, type, handle, length
/** OFFSET_DATA payload starts with the 64-bit offset of the data. */
export const OFFSET_DATA_PREFIX_BYTES = 8;
export const BLOCK_STATUS_DESCRIPTOR_BYTES = 8;

/** proto.md "Conventions": strings MUST be no longer than 4096 bytes. */
export const MAX_STRING_BYTES = 4096;
/** Largest length field of a structured chunk carrying data (proto.md OFFSET_DATA: 2^32 - 8). */
export const MAX_CHUNK_DATA_BYTES = 0xffffffff - OFFSET_DATA_PREFIX_BYTES;

// --- Handshake flags (server, 16 bits) and client flags (32 bits)

export const NBD_FLAG_FIXED_NEWSTYLE = 1 << 0;
export const NBD_FLAG_NO_ZEROES = 1 << 1;
export const NBD_FLAG_C_FIXED_NEWSTYLE = 1 << 0;
export const NBD_FLAG_C_NO_ZEROES = 1 << 1;
export const KNOWN_CLIENT_FLAGS = NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES;

// --- Transmission flags (16 bits)

export const NBD_FLAG_HAS_FLAGS = 1 << 0;
export const NBD_FLAG_READ_ONLY = 1 << 1;
export const NBD_FLAG_SEND_FLUSH = 1 << 2;
export const NBD_FLAG_SEND_FUA = 1 << 3;
export const NBD_FLAG_ROTATIONAL = 1 << 4;
export const NBD_FLAG_SEND_TRIM = 1 << 5;
export const NBD_FLAG_SEND_WRITE_ZEROES = 1 << 6;
export const NBD_FLAG_SEND_DF = 1 << 7;
export const NBD_FLAG_CAN_MULTI_CONN = 1 << 8;
export const NBD_FLAG_SEND_RESIZE = 1 << 9;
export const NBD_FLAG_SEND_CACHE = 1 << 10;
export const NBD_FLAG_SEND_FAST_ZERO = 1 << 11;

// --- Options (proto.md "Option types")

export const NBD_OPT_EXPORT_NAME = 1;
export const NBD_OPT_ABORT = 2;
export const NBD_OPT_LIST = 3;
export const NBD_OPT_PEEK_EXPORT = 4;
export const NBD_OPT_STARTTLS = 5;
export const NBD_OPT_INFO = 6;
export const NBD_OPT_GO = 7;
export const NBD_OPT_STRUCTURED_REPLY = 8;
export const NBD_OPT_LIST_META_CONTEXT = 9;
export const NBD_OPT_SET_META_CONTEXT = 10;
export const NBD_OPT_EXTENDED_HEADERS = 11;

// --- Option reply types (proto.md "Option reply types"); errors have bit 31 set

export const NBD_REP_ACK = 1;
export const NBD_REP_SERVER = 2;
export const NBD_REP_INFO = 3;
export const NBD_REP_META_CONTEXT = 4;
export const NBD_REP_FLAG_ERROR = 0x80000000;
export const NBD_REP_ERR_UNSUP = NBD_REP_FLAG_ERROR + 1;
export const NBD_REP_ERR_POLICY = NBD_REP_FLAG_ERROR + 2;
export const NBD_REP_ERR_INVALID = NBD_REP_FLAG_ERROR + 3;
export const NBD_REP_ERR_PLATFORM = NBD_REP_FLAG_ERROR + 4;
export const NBD_REP_ERR_TLS_REQD = NBD_REP_FLAG_ERROR + 5;
export const NBD_REP_ERR_UNKNOWN = NBD_REP_FLAG_ERROR + 6;
export const NBD_REP_ERR_SHUTDOWN = NBD_REP_FLAG_ERROR + 7;
export const NBD_REP_ERR_BLOCK_SIZE_REQD = NBD_REP_FLAG_ERROR + 8;
export const NBD_REP_ERR_TOO_BIG = NBD_REP_FLAG_ERROR + 9;

// --- NBD_INFO types inside NBD_REP_INFO (proto.md under NBD_REP_INFO)

export const NBD_INFO_EXPORT = 0;
export const NBD_INFO_NAME = 1;
export const NBD_INFO_DESCRIPTION = 2;
export const NBD_INFO_BLOCK_SIZE = 3;

// --- Commands (proto.md "Request types")

export const NBD_CMD_READ = 0;
export const NBD_CMD_WRITE = 1;
export const NBD_CMD_DISC = 2;
export const NBD_CMD_FLUSH = 3;
export const NBD_CMD_TRIM = 4;
export const NBD_CMD_CACHE = 5;
export const NBD_CMD_WRITE_ZEROES = 6;
export const NBD_CMD_BLOCK_STATUS = 7;

// --- Command flags (16 bits)

export const NBD_CMD_FLAG_FUA = 1 << 0;
export const NBD_CMD_FLAG_NO_HOLE = 1 << 1;
export const NBD_CMD_FLAG_DF = 1 << 2;
export const NBD_CMD_FLAG_REQ_ONE = 1 << 3;
export const NBD_CMD_FLAG_FAST_ZERO = 1 << 4;

// --- Structured replies (proto.md "Structured reply flags" and "types")

export const NBD_REPLY_FLAG_DONE = 1 << 0;
export const NBD_REPLY_TYPE_NONE = 0;
export const NBD_REPLY_TYPE_OFFSET_DATA = 1;
export const NBD_REPLY_TYPE_OFFSET_HOLE = 2;
export const NBD_REPLY_TYPE_BLOCK_STATUS = 5;
export const NBD_REPLY_TYPE_ERROR = (1 << 15) + 1;
export const NBD_REPLY_TYPE_ERROR_OFFSET = (1 << 15) + 2;

// --- base:allocation (proto.md "base:allocation metadata context")

export const BASE_ALLOCATION_CONTEXT = 'base:allocation';
export const BASE_NAMESPACE = 'base';
export const NBD_STATE_HOLE = 1 << 0;
export const NBD_STATE_ZERO = 1 << 1;
/** The id we hand out for base:allocation; any nonzero transient value works. */
export const BASE_ALLOCATION_CONTEXT_ID = 1;

// --- Error values (proto.md "Error values"); not the host's errno

export const NBD_EPERM = 1;
export const NBD_EIO = 5;
export const NBD_ENOMEM = 12;
export const NBD_EINVAL = 22;
export const NBD_ENOSPC = 28;
export const NBD_EOVERFLOW = 75;
export const NBD_ENOTSUP = 95;
export const NBD_ESHUTDOWN = 108;

export type NbdErrno =
  | typeof NBD_EPERM
  | typeof NBD_EIO
  | typeof NBD_ENOMEM
  | typeof NBD_EINVAL
  | typeof NBD_ENOSPC
  | typeof NBD_EOVERFLOW
  | typeof NBD_ENOTSUP
  | typeof NBD_ESHUTDOWN;

const COMMAND_NAMES: Readonly<Record<number, string>> = {
  [NBD_CMD_READ]: 'READ',
  [NBD_CMD_WRITE]: 'WRITE',
  [NBD_CMD_DISC]: 'DISC',
  [NBD_CMD_FLUSH]: 'FLUSH',
  [NBD_CMD_TRIM]: 'TRIM',
  [NBD_CMD_CACHE]: 'CACHE',
  [NBD_CMD_WRITE_ZEROES]: 'WRITE_ZEROES',
  [NBD_CMD_BLOCK_STATUS]: 'BLOCK_STATUS',
};

const OPTION_NAMES: Readonly<Record<number, string>> = {
  [NBD_OPT_EXPORT_NAME]: 'EXPORT_NAME',
  [NBD_OPT_ABORT]: 'ABORT',
  [NBD_OPT_LIST]: 'LIST',
  [NBD_OPT_PEEK_EXPORT]: 'PEEK_EXPORT',
  [NBD_OPT_STARTTLS]: 'STARTTLS',
  [NBD_OPT_INFO]: 'INFO',
  [NBD_OPT_GO]: 'GO',
  [NBD_OPT_STRUCTURED_REPLY]: 'STRUCTURED_REPLY',
  [NBD_OPT_LIST_META_CONTEXT]: 'LIST_META_CONTEXT',
  [NBD_OPT_SET_META_CONTEXT]: 'SET_META_CONTEXT',
  [NBD_OPT_EXTENDED_HEADERS]: 'EXTENDED_HEADERS',
};

/** For logs and error messages only. */
export function commandName(type: number): string {
  return COMMAND_NAMES[type] ?? `UNKNOWN(${type})`;
}

/** For logs and error messages only. */
export function optionName(option: number): string {
  return OPTION_NAMES[option] ?? `UNKNOWN(${option})`;
}
