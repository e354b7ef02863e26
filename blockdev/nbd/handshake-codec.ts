import {
  CLIENT_FLAGS_BYTES,
  EXPORT_NAME_REPLY_BYTES,
  EXPORT_NAME_REPLY_ZEROES_BYTES,
  KNOWN_CLIENT_FLAGS,
  NBD_FLAG_C_FIXED_NEWSTYLE,
  NBD_FLAG_C_NO_ZEROES,
  NBD_FLAG_FIXED_NEWSTYLE,
  NBD_FLAG_NO_ZEROES,
  NBD_INFO_BLOCK_SIZE,
  NBD_INFO_DESCRIPTION,
  NBD_INFO_EXPORT,
  NBD_INFO_NAME,
  NBD_INIT_MAGIC,
  NBD_OPTS_MAGIC,
  NBD_REP_INFO,
  NBD_REP_MAGIC,
  NBD_REP_META_CONTEXT,
  NBD_REP_SERVER,
  OPTION_HEADER_BYTES,
  OPTION_REPLY_HEADER_BYTES,
  SERVER_GREETING_BYTES,
} from './constants.js';
import { ProtocolError } from './protocol-error.js';
import { decodeString, encodeBoundedString, writeUint64 } from './wire.js';

/**
 * Pure codec of the server side of the fixed newstyle handshake
 * (proto.md "Fixed newstyle negotiation", "Option types", "Option reply
 * types"): client messages in, server messages out. No sockets, no state.
 */

export interface ClientFlags {
  readonly fixedNewstyle: boolean;
  readonly noZeroes: boolean;
}

export interface OptionHeader {
  readonly option: number;
  readonly lengthBytes: number;
}

/** NBD_OPT_INFO / NBD_OPT_GO data: export name and the NBD_INFO types asked for. */
export interface InfoRequest {
  readonly name: string;
  readonly infoTypes: readonly number[];
}

/** NBD_OPT_LIST_META_CONTEXT / NBD_OPT_SET_META_CONTEXT data. */
export interface MetaContextRequest {
  readonly exportName: string;
  readonly queries: readonly string[];
}

export interface BlockSizeInfo {
  readonly minimumBytes: number;
  readonly preferredBytes: number;
  readonly maximumBytes: number;
}

/** Handshake flags we advertise: fixed newstyle, and we can skip the 124 zero bytes. */
export const SERVER_HANDSHAKE_FLAGS = NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES;

export function encodeServerGreeting(handshakeFlags: number = SERVER_HANDSHAKE_FLAGS): Buffer {
  const buffer = Buffer.allocUnsafe(SERVER_GREETING_BYTES);
  buffer.writeBigUInt64BE(NBD_INIT_MAGIC, 0);
  buffer.writeBigUInt64BE(NBD_OPTS_MAGIC, 8);
  buffer.writeUInt16BE(handshakeFlags, 16);
  return buffer;
}

/** proto.md "Client flags": the server MUST drop a client that sets a flag it did not advertise. */
export function decodeClientFlags(bytes: Buffer): ClientFlags | ProtocolError {
  if (bytes.length !== CLIENT_FLAGS_BYTES) {
    return new ProtocolError('TRUNCATED', `client flags are ${CLIENT_FLAGS_BYTES} bytes, got ${bytes.length}`);
  }
  const flags = bytes.readUInt32BE(0);
  if ((flags & ~KNOWN_CLIENT_FLAGS) !== 0) {
    return new ProtocolError('BAD_CLIENT_FLAGS', `client sent unknown client flags 0x${flags.toString(16)}`, { flags });
  }
  return {
    fixedNewstyle: (flags & NBD_FLAG_C_FIXED_NEWSTYLE) !== 0,
    noZeroes: (flags & NBD_FLAG_C_NO_ZEROES) !== 0,
  };
}

export function decodeOptionHeader(bytes: Buffer): OptionHeader | ProtocolError {
  if (bytes.length !== OPTION_HEADER_BYTES) {
    return new ProtocolError('TRUNCATED', `option header is ${OPTION_HEADER_BYTES} bytes, got ${bytes.length}`);
  }
  if (bytes.readBigUInt64BE(0) !== NBD_OPTS_MAGIC) {
    return new ProtocolError('BAD_MAGIC', 'option does not start with IHAVEOPT magic');
  }
  return { option: bytes.readUInt32BE(8), lengthBytes: bytes.readUInt32BE(12) };
}

/** NBD_OPT_EXPORT_NAME data is the bare name. */
export function decodeExportNameData(data: Buffer): string | ProtocolError {
  return decodeString(data, 'export name');
}

/**
 * NBD_OPT_INFO / NBD_OPT_GO data: u32 name length (MUST be <= data length - 6),
 * name, u16 count, count x u16 info types, and nothing after.
 */
export function decodeInfoRequestData(data: Buffer): InfoRequest | ProtocolError {
  if (data.length < 6) {
    return new ProtocolError('BAD_LENGTH', `INFO/GO data is ${data.length} bytes, at least 6 expected`);
  }
  const nameBytes = data.readUInt32BE(0);
  if (nameBytes > data.length - 6) {
    return new ProtocolError('BAD_LENGTH', `INFO/GO name length ${nameBytes} overruns the ${data.length}-byte option`);
  }
  const name = decodeString(data.subarray(4, 4 + nameBytes), 'export name');
  if (name instanceof ProtocolError) {
    return name;
  }
  const countOffset = 4 + nameBytes;
  const count = data.readUInt16BE(countOffset);
  if (data.length !== countOffset + 2 + 2 * count) {
    return new ProtocolError('BAD_LENGTH', `INFO/GO lists ${count} info requests but carries ${data.length} bytes`);
  }
  const infoTypes: number[] = [];
  for (let index = 0; index < count; index += 1) {
    infoTypes.push(data.readUInt16BE(countOffset + 2 + 2 * index));
  }
  return { name, infoTypes };
}

/**
 * LIST_META_CONTEXT / SET_META_CONTEXT data: u32 name length, name, u32 query
 * count, then each query as u32 length + string. proto.md: a length that
 * reads beyond the option MUST give NBD_REP_ERR_INVALID.
 */
export function decodeMetaContextData(data: Buffer): MetaContextRequest | ProtocolError {
  if (data.length < 8) {
    return new ProtocolError('BAD_LENGTH', `meta context data is ${data.length} bytes, at least 8 expected`);
  }
  const nameBytes = data.readUInt32BE(0);
  if (nameBytes > data.length - 8) {
    return new ProtocolError('BAD_LENGTH', `meta context export name length ${nameBytes} overruns the option`);
  }
  const exportName = decodeString(data.subarray(4, 4 + nameBytes), 'export name');
  if (exportName instanceof ProtocolError) {
    return exportName;
  }
  let cursor = 4 + nameBytes;
  const count = data.readUInt32BE(cursor);
  cursor += 4;
  // Each query takes at least its 4-byte length: a count beyond that is a lie.
  if (count > (data.length - cursor) / 4) {
    return new ProtocolError('BAD_LENGTH', `meta context query count ${count} overruns the option`);
  }
  const queries: string[] = [];
  for (let index = 0; index < count; index += 1) {
    if (cursor + 4 > data.length) {
      return new ProtocolError('BAD_LENGTH', `meta context query ${index} length overruns the option`);
    }
    const queryBytes = data.readUInt32BE(cursor);
    cursor += 4;
    if (queryBytes > data.length - cursor) {
      return new ProtocolError('BAD_LENGTH', `meta context query ${index} of ${queryBytes} bytes overruns the option`);
    }
    const query = decodeString(data.subarray(cursor, cursor + queryBytes), 'meta context query');
    if (query instanceof ProtocolError) {
      return query;
    }
    queries.push(query);
    cursor += queryBytes;
  }
  if (cursor !== data.length) {
    return new ProtocolError('BAD_LENGTH', `meta context option has ${data.length - cursor} trailing bytes`);
  }
  return { exportName, queries };
}

// --- Replies

export function encodeOptionReply(option: number, replyType: number, data?: Buffer): Buffer {
  const dataBytes = data?.length ?? 0;
  const buffer = Buffer.allocUnsafe(OPTION_REPLY_HEADER_BYTES + dataBytes);
  buffer.writeBigUInt64BE(NBD_REP_MAGIC, 0);
  buffer.writeUInt32BE(option, 8);
  buffer.writeUInt32BE(replyType, 12);
  buffer.writeUInt32BE(dataBytes, 16);
  data?.copy(buffer, OPTION_REPLY_HEADER_BYTES);
  return buffer;
}

/** An error reply (bit 31 set) with a message for humans; proto.md allows the data to be a string. */
export function encodeOptionError(option: number, errorType: number, message: string): Buffer {
  return encodeOptionReply(option, errorType, encodeBoundedString(message));
}

/** NBD_REP_SERVER: u32 name length, name, then a description for humans. */
export function encodeServerReply(option: number, name: string, description: string): Buffer {
  const nameBytes = encodeBoundedString(name);
  const descriptionBytes = encodeBoundedString(description);
  const data = Buffer.allocUnsafe(4 + nameBytes.length + descriptionBytes.length);
  data.writeUInt32BE(nameBytes.length, 0);
  nameBytes.copy(data, 4);
  descriptionBytes.copy(data, 4 + nameBytes.length);
  return encodeOptionReply(option, NBD_REP_SERVER, data);
}

/** NBD_REP_INFO with NBD_INFO_EXPORT: size u64 + transmission flags u16 (length 12). */
export function encodeInfoExport(option: number, sizeBytes: number, transmissionFlags: number): Buffer {
  const data = Buffer.allocUnsafe(12);
  data.writeUInt16BE(NBD_INFO_EXPORT, 0);
  writeUint64(data, sizeBytes, 2);
  data.writeUInt16BE(transmissionFlags, 10);
  return encodeOptionReply(option, NBD_REP_INFO, data);
}

export function encodeInfoName(option: number, name: string): Buffer {
  return encodeInfoString(option, NBD_INFO_NAME, name);
}

export function encodeInfoDescription(option: number, description: string): Buffer {
  return encodeInfoString(option, NBD_INFO_DESCRIPTION, description);
}

function encodeInfoString(option: number, infoType: number, text: string): Buffer {
  const textBytes = encodeBoundedString(text);
  const data = Buffer.allocUnsafe(2 + textBytes.length);
  data.writeUInt16BE(infoType, 0);
  textBytes.copy(data, 2);
  return encodeOptionReply(option, NBD_REP_INFO, data);
}

/** NBD_REP_INFO with NBD_INFO_BLOCK_SIZE: three u32 (length 14). */
export function encodeInfoBlockSize(option: number, sizes: BlockSizeInfo): Buffer {
  const data = Buffer.allocUnsafe(14);
  data.writeUInt16BE(NBD_INFO_BLOCK_SIZE, 0);
  data.writeUInt32BE(sizes.minimumBytes, 2);
  data.writeUInt32BE(sizes.preferredBytes, 6);
  data.writeUInt32BE(sizes.maximumBytes, 10);
  return encodeOptionReply(option, NBD_REP_INFO, data);
}

/** NBD_REP_META_CONTEXT: u32 context id + name. */
export function encodeMetaContextReply(option: number, contextId: number, name: string): Buffer {
  const nameBytes = encodeBoundedString(name);
  const data = Buffer.allocUnsafe(4 + nameBytes.length);
  data.writeUInt32BE(contextId, 0);
  nameBytes.copy(data, 4);
  return encodeOptionReply(option, NBD_REP_META_CONTEXT, data);
}

/**
 * The reply to NBD_OPT_EXPORT_NAME (no option-reply header): size u64,
 * transmission flags u16, and 124 zero bytes unless NBD_FLAG_C_NO_ZEROES.
 */
export function encodeExportNameReply(sizeBytes: number, transmissionFlags: number, noZeroes: boolean): Buffer {
  const total = EXPORT_NAME_REPLY_BYTES + (noZeroes ? 0 : EXPORT_NAME_REPLY_ZEROES_BYTES);
  const buffer = Buffer.alloc(total);
  writeUint64(buffer, sizeBytes, 0);
  buffer.writeUInt16BE(transmissionFlags, 8);
  return buffer;
}
