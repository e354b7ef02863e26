import {
  CLIENT_FLAGS_BYTES,
  NBD_INFO_BLOCK_SIZE,
  NBD_INFO_DESCRIPTION,
  NBD_INFO_EXPORT,
  NBD_INFO_NAME,
  NBD_INIT_MAGIC,
  NBD_OPTS_MAGIC,
  NBD_REP_MAGIC,
  NBD_REQUEST_MAGIC,
  NBD_SIMPLE_REPLY_MAGIC,
  NBD_STRUCTURED_REPLY_MAGIC,
  OPTION_HEADER_BYTES,
  OPTION_REPLY_HEADER_BYTES,
  REQUEST_HEADER_BYTES,
  SERVER_GREETING_BYTES,
  SIMPLE_REPLY_HEADER_BYTES,
  STRUCTURED_REPLY_HEADER_BYTES,
} from './constants.js';
import { ProtocolError } from './protocol-error.js';
import type { BlockStatusDescriptor, RequestHeader } from './transmission-codec.js';
import { readUint64, writeUint64 } from './wire.js';

/**
 * The client side of the codecs: what a client sends, and decoders for what
 * the server answers. The server never uses it; tests, fuzzers and probes
 * (health checks, benchmarks) do, so they speak the protocol through the
 * same constants instead of hand-made byte arrays.
 */

export function encodeClientFlags(flags: number): Buffer {
  const buffer = Buffer.allocUnsafe(CLIENT_FLAGS_BYTES);
  buffer.writeUInt32BE(flags >>> 0, 0);
  return buffer;
}

export function encodeOption(option: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const buffer = Buffer.allocUnsafe(OPTION_HEADER_BYTES + data.length);
  buffer.writeBigUInt64BE(NBD_OPTS_MAGIC, 0);
  buffer.writeUInt32BE(option >>> 0, 8);
  buffer.writeUInt32BE(data.length, 12);
  data.copy(buffer, OPTION_HEADER_BYTES);
  return buffer;
}

/** Data of NBD_OPT_INFO / NBD_OPT_GO. */
export function encodeInfoRequestData(name: string, infoTypes: readonly number[]): Buffer {
  const nameBytes = Buffer.from(name, 'utf8');
  const buffer = Buffer.allocUnsafe(4 + nameBytes.length + 2 + 2 * infoTypes.length);
  buffer.writeUInt32BE(nameBytes.length, 0);
  nameBytes.copy(buffer, 4);
  buffer.writeUInt16BE(infoTypes.length, 4 + nameBytes.length);
  infoTypes.forEach((type, index) => buffer.writeUInt16BE(type, 4 + nameBytes.length + 2 + 2 * index));
  return buffer;
}

/** Data of NBD_OPT_LIST_META_CONTEXT / NBD_OPT_SET_META_CONTEXT. */
export function encodeMetaContextData(exportName: string, queries: readonly string[]): Buffer {
  const parts: Buffer[] = [];
  const nameBytes = Buffer.from(exportName, 'utf8');
  const head = Buffer.allocUnsafe(4);
  head.writeUInt32BE(nameBytes.length, 0);
  parts.push(head, nameBytes);
  const count = Buffer.allocUnsafe(4);
  count.writeUInt32BE(queries.length, 0);
  parts.push(count);
  for (const query of queries) {
    const queryBytes = Buffer.from(query, 'utf8');
    const length = Buffer.allocUnsafe(4);
    length.writeUInt32BE(queryBytes.length, 0);
    parts.push(length, queryBytes);
  }
  return Buffer.concat(parts);
}

export function encodeRequest(header: RequestHeader, payload?: Buffer): Buffer {
  const buffer = Buffer.allocUnsafe(REQUEST_HEADER_BYTES + (payload?.length ?? 0));
  buffer.writeUInt32BE(NBD_REQUEST_MAGIC, 0);
  buffer.writeUInt16BE(header.flags, 4);
  buffer.writeUInt16BE(header.type, 6);
  buffer.writeBigUInt64BE(header.handle, 8);
  writeUint64(buffer, header.offset, 16);
  buffer.writeUInt32BE(header.lengthBytes, 24);
  payload?.copy(buffer, REQUEST_HEADER_BYTES);
  return buffer;
}

export function decodeServerGreeting(bytes: Buffer): { handshakeFlags: number } | ProtocolError {
  if (bytes.length < SERVER_GREETING_BYTES) {
    return new ProtocolError('TRUNCATED', 'server greeting is 18 bytes');
  }
  if (bytes.readBigUInt64BE(0) !== NBD_INIT_MAGIC || bytes.readBigUInt64BE(8) !== NBD_OPTS_MAGIC) {
    return new ProtocolError('BAD_MAGIC', 'server greeting lacks NBDMAGIC/IHAVEOPT');
  }
  return { handshakeFlags: bytes.readUInt16BE(16) };
}

export interface OptionReply {
  readonly option: number;
  readonly replyType: number;
  readonly data: Buffer;
  /** Bytes the reply took in the stream. */
  readonly totalBytes: number;
}

/** One option reply from the start of `bytes`, or undefined if incomplete. */
export function decodeOptionReply(bytes: Buffer): OptionReply | ProtocolError | undefined {
  if (bytes.length < OPTION_REPLY_HEADER_BYTES) {
    return undefined;
  }
  if (bytes.readBigUInt64BE(0) !== NBD_REP_MAGIC) {
    return new ProtocolError('BAD_MAGIC', 'option reply magic mismatch');
  }
  const dataBytes = bytes.readUInt32BE(16);
  if (bytes.length < OPTION_REPLY_HEADER_BYTES + dataBytes) {
    return undefined;
  }
  return {
    option: bytes.readUInt32BE(8),
    replyType: bytes.readUInt32BE(12),
    data: bytes.subarray(OPTION_REPLY_HEADER_BYTES, OPTION_REPLY_HEADER_BYTES + dataBytes),
    totalBytes: OPTION_REPLY_HEADER_BYTES + dataBytes,
  };
}

export type InfoReply =
  | { readonly info: 'export'; readonly sizeBytes: number; readonly transmissionFlags: number }
  | { readonly info: 'name'; readonly name: string }
  | { readonly info: 'description'; readonly description: string }
  | { readonly info: 'blockSize'; readonly minimumBytes: number; readonly preferredBytes: number; readonly maximumBytes: number }
  | { readonly info: 'unknown'; readonly infoType: number };

/** The data of an NBD_REP_INFO reply. */
export function decodeInfoReply(data: Buffer): InfoReply | ProtocolError {
  if (data.length < 2) {
    return new ProtocolError('TRUNCATED', 'NBD_REP_INFO shorter than its type');
  }
  const infoType = data.readUInt16BE(0);
  switch (infoType) {
    case NBD_INFO_EXPORT:
      return data.length === 12
        ? { info: 'export', sizeBytes: readUint64(data, 2), transmissionFlags: data.readUInt16BE(10) }
        : new ProtocolError('BAD_LENGTH', 'NBD_INFO_EXPORT must be 12 bytes');
    case NBD_INFO_NAME:
      return { info: 'name', name: data.subarray(2).toString('utf8') };
    case NBD_INFO_DESCRIPTION:
      return { info: 'description', description: data.subarray(2).toString('utf8') };
    case NBD_INFO_BLOCK_SIZE:
      return data.length === 14
        ? {
            info: 'blockSize',
            minimumBytes: data.readUInt32BE(2),
            preferredBytes: data.readUInt32BE(6),
            maximumBytes: data.readUInt32BE(10),
          }
        : new ProtocolError('BAD_LENGTH', 'NBD_INFO_BLOCK_SIZE must be 14 bytes');
    default:
      return { info: 'unknown', infoType };
  }
}

export type TransmissionReply =
  | { readonly kind: 'simple'; readonly error: number; readonly handle: bigint; readonly data: Buffer; readonly totalBytes: number }
  | {
      readonly kind: 'structured';
      readonly flags: number;
      readonly type: number;
      readonly handle: bigint;
      readonly payload: Buffer;
      readonly totalBytes: number;
    };

/**
 * One reply from the start of `bytes`. A successful simple reply to a READ
 * carries data whose length only the client knows: `readLengthOf(handle)`
 * returns it (undefined for non-READ requests).
 */
export function decodeTransmissionReply(
  bytes: Buffer,
  readLengthOf: (handle: bigint) => number | undefined,
): TransmissionReply | ProtocolError | undefined {
  if (bytes.length < 4) {
    return undefined;
  }
  const magic = bytes.readUInt32BE(0);
  if (magic === NBD_SIMPLE_REPLY_MAGIC) {
    if (bytes.length < SIMPLE_REPLY_HEADER_BYTES) {
      return undefined;
    }
    const error = bytes.readUInt32BE(4);
    const handle = bytes.readBigUInt64BE(8);
    const dataBytes = error === 0 ? (readLengthOf(handle) ?? 0) : 0;
    if (bytes.length < SIMPLE_REPLY_HEADER_BYTES + dataBytes) {
      return undefined;
    }
    const data = bytes.subarray(SIMPLE_REPLY_HEADER_BYTES, SIMPLE_REPLY_HEADER_BYTES + dataBytes);
    return { kind: 'simple', error, handle, data, totalBytes: SIMPLE_REPLY_HEADER_BYTES + dataBytes };
  }
  if (magic === NBD_STRUCTURED_REPLY_MAGIC) {
    if (bytes.length < STRUCTURED_REPLY_HEADER_BYTES) {
      return undefined;
    }
    const payloadBytes = bytes.readUInt32BE(16);
    if (bytes.length < STRUCTURED_REPLY_HEADER_BYTES + payloadBytes) {
      return undefined;
    }
    return {
      kind: 'structured',
      flags: bytes.readUInt16BE(4),
      type: bytes.readUInt16BE(6),
      handle: bytes.readBigUInt64BE(8),
      payload: bytes.subarray(STRUCTURED_REPLY_HEADER_BYTES, STRUCTURED_REPLY_HEADER_BYTES + payloadBytes),
      totalBytes: STRUCTURED_REPLY_HEADER_BYTES + payloadBytes,
    };
  }
  return new ProtocolError('BAD_MAGIC', `reply magic 0x${magic.toString(16)} is neither simple nor structured`);
}

/** Payload of NBD_REPLY_TYPE_ERROR. */
export function decodeErrorChunk(payload: Buffer): { error: number; message: string } | ProtocolError {
  if (payload.length < 6) {
    return new ProtocolError('TRUNCATED', 'error chunk shorter than 6 bytes');
  }
  const messageBytes = payload.readUInt16BE(4);
  if (messageBytes > payload.length - 6) {
    return new ProtocolError('BAD_LENGTH', 'error chunk message overruns the chunk');
  }
  return { error: payload.readUInt32BE(0), message: payload.subarray(6, 6 + messageBytes).toString('utf8') };
}

/** Payload of NBD_REPLY_TYPE_OFFSET_DATA. */
export function decodeOffsetData(payload: Buffer): { offset: number; data: Buffer } | ProtocolError {
  if (payload.length < 9) {
    return new ProtocolError('TRUNCATED', 'OFFSET_DATA chunk shorter than 9 bytes');
  }
  return { offset: readUint64(payload, 0), data: payload.subarray(8) };
}

/** Payload of NBD_REPLY_TYPE_BLOCK_STATUS. */
export function decodeBlockStatusPayload(
  payload: Buffer,
): { contextId: number; descriptors: BlockStatusDescriptor[] } | ProtocolError {
  if (payload.length < 12 || (payload.length - 4) % 8 !== 0) {
    return new ProtocolError('BAD_LENGTH', 'BLOCK_STATUS chunk length must be 4 + 8n (n >= 1)');
  }
  const descriptors: BlockStatusDescriptor[] = [];
  for (let cursor = 4; cursor < payload.length; cursor += 8) {
    descriptors.push({ lengthBytes: payload.readUInt32BE(cursor), flags: payload.readUInt32BE(cursor + 4) });
  }
  return { contextId: payload.readUInt32BE(0), descriptors };
}

/** The reply to NBD_OPT_EXPORT_NAME. */
export function decodeExportNameReply(bytes: Buffer): { sizeBytes: number; transmissionFlags: number } | ProtocolError {
  if (bytes.length < 10) {
    return new ProtocolError('TRUNCATED', 'EXPORT_NAME reply is at least 10 bytes');
  }
  return { sizeBytes: readUint64(bytes, 0), transmissionFlags: bytes.readUInt16BE(8) };
}
