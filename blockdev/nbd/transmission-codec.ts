import {
  BLOCK_STATUS_DESCRIPTOR_BYTES,
  NBD_REPLY_FLAG_DONE,
  NBD_REPLY_TYPE_BLOCK_STATUS,
  NBD_REPLY_TYPE_ERROR,
  NBD_REPLY_TYPE_NONE,
  NBD_REPLY_TYPE_OFFSET_DATA,
  NBD_REQUEST_MAGIC,
  NBD_SIMPLE_REPLY_MAGIC,
  NBD_STRUCTURED_REPLY_MAGIC,
  OFFSET_DATA_PREFIX_BYTES,
  REQUEST_HEADER_BYTES,
  SIMPLE_REPLY_HEADER_BYTES,
  STRUCTURED_REPLY_HEADER_BYTES,
} from './constants.js';
import { ProtocolError } from './protocol-error.js';
import { encodeBoundedString, readUint64, writeUint64 } from './wire.js';

/**
 * Pure codec of the transmission phase (proto.md "Request message", "Simple
 * reply message", "Structured reply chunk message"): request headers in,
 * simple replies and structured chunks out.
 *
 * Replies that carry data are laid out so the data part can be filled in
 * place: the caller allocates header + data once, lets the device read into
 * the data part, then writes the header in front. No copy of the data.
 */

/** The 28-byte request header; a WRITE's payload follows it on the wire. */
export interface RequestHeader {
  readonly flags: number;
  readonly type: number;
  /** Opaque to the server; echoed in every reply to the request. */
  readonly handle: bigint;
  /** May exceed Number.MAX_SAFE_INTEGER (then it is inexact and fails range checks). */
  readonly offset: number;
  readonly lengthBytes: number;
}

export function decodeRequestHeader(bytes: Buffer, at = 0): RequestHeader | ProtocolError {
  if (bytes.length - at < REQUEST_HEADER_BYTES) {
    return new ProtocolError('TRUNCATED', `request header is ${REQUEST_HEADER_BYTES} bytes, got ${bytes.length - at}`);
  }
  const magic = bytes.readUInt32BE(at);
  if (magic !== NBD_REQUEST_MAGIC) {
    return new ProtocolError('BAD_MAGIC', `request magic is 0x${magic.toString(16)}, expected 0x25609513`, { magic });
  }
  return {
    flags: bytes.readUInt16BE(at + 4),
    type: bytes.readUInt16BE(at + 6),
    handle: bytes.readBigUInt64BE(at + 8),
    offset: readUint64(bytes, at + 16),
    lengthBytes: bytes.readUInt32BE(at + 24),
  };
}

// --- Simple replies

export function writeSimpleReplyHeader(target: Buffer, error: number, handle: bigint): void {
  target.writeUInt32BE(NBD_SIMPLE_REPLY_MAGIC, 0);
  target.writeUInt32BE(error, 4);
  target.writeBigUInt64BE(handle, 8);
}

/** A simple reply without data: every success except a READ, and every error without structured replies. */
export function encodeSimpleReply(error: number, handle: bigint): Buffer {
  const buffer = Buffer.allocUnsafe(SIMPLE_REPLY_HEADER_BYTES);
  writeSimpleReplyHeader(buffer, error, handle);
  return buffer;
}

/**
 * A buffer for a simple READ reply of `dataBytes`: the caller reads into
 * `buffer.subarray(SIMPLE_REPLY_HEADER_BYTES)` and then calls writeSimpleReplyHeader.
 */
export function allocateSimpleReadReply(dataBytes: number): Buffer {
  return Buffer.allocUnsafe(SIMPLE_REPLY_HEADER_BYTES + dataBytes);
}

// --- Structured reply chunks

export function writeStructuredChunkHeader(
  target: Buffer,
  flags: number,
  type: number,
  handle: bigint,
  payloadBytes: number,
): void {
  target.writeUInt32BE(NBD_STRUCTURED_REPLY_MAGIC, 0);
  target.writeUInt16BE(flags, 4);
  target.writeUInt16BE(type, 6);
  target.writeBigUInt64BE(handle, 8);
  target.writeUInt32BE(payloadBytes, 16);
}

/** Bytes before the data in an OFFSET_DATA chunk: chunk header + 64-bit offset. */
export const OFFSET_DATA_HEADER_BYTES = STRUCTURED_REPLY_HEADER_BYTES + OFFSET_DATA_PREFIX_BYTES;

/**
 * A buffer for one OFFSET_DATA chunk of `dataBytes` (> 0): the caller reads
 * into `buffer.subarray(OFFSET_DATA_HEADER_BYTES)` then calls writeOffsetDataHeader.
 */
export function allocateOffsetDataChunk(dataBytes: number): Buffer {
  return Buffer.allocUnsafe(OFFSET_DATA_HEADER_BYTES + dataBytes);
}

/**
 * Header of an OFFSET_DATA chunk whose data already sits after it in
 * `target`. proto.md allows the content chunk to carry NBD_REPLY_FLAG_DONE
 * when no error can follow, which holds once the data is read.
 */
export function writeOffsetDataHeader(target: Buffer, flags: number, handle: bigint, offset: number): void {
  const dataBytes = target.length - OFFSET_DATA_HEADER_BYTES;
  writeStructuredChunkHeader(target, flags, NBD_REPLY_TYPE_OFFSET_DATA, handle, OFFSET_DATA_PREFIX_BYTES + dataBytes);
  writeUint64(target, offset, STRUCTURED_REPLY_HEADER_BYTES);
}

/** NBD_REPLY_TYPE_NONE with DONE: success of a request that has nothing to return. */
export function encodeStructuredNone(handle: bigint): Buffer {
  const buffer = Buffer.allocUnsafe(STRUCTURED_REPLY_HEADER_BYTES);
  writeStructuredChunkHeader(buffer, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, handle, 0);
  return buffer;
}

/** Longest message we attach to an error chunk: proto.md strings SHOULD be at most 256 bytes. */
const MAX_ERROR_MESSAGE_BYTES = 256;

/** NBD_REPLY_TYPE_ERROR with DONE: u32 error, u16 message length, message. */
export function encodeStructuredError(handle: bigint, error: number, message: string): Buffer {
  const messageBytes = encodeBoundedString(message, MAX_ERROR_MESSAGE_BYTES);
  const buffer = Buffer.allocUnsafe(STRUCTURED_REPLY_HEADER_BYTES + 6 + messageBytes.length);
  writeStructuredChunkHeader(buffer, NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_ERROR, handle, 6 + messageBytes.length);
  buffer.writeUInt32BE(error, STRUCTURED_REPLY_HEADER_BYTES);
  buffer.writeUInt16BE(messageBytes.length, STRUCTURED_REPLY_HEADER_BYTES + 4);
  messageBytes.copy(buffer, STRUCTURED_REPLY_HEADER_BYTES + 6);
  return buffer;
}

/** One base:allocation descriptor: a run length and NBD_STATE_* flags. */
export interface BlockStatusDescriptor {
  readonly lengthBytes: number;
  readonly flags: number;
}

/** NBD_REPLY_TYPE_BLOCK_STATUS: u32 context id, then (u32 length, u32 flags) per descriptor. */
export function encodeBlockStatusChunk(
  handle: bigint,
  contextId: number,
  descriptors: readonly BlockStatusDescriptor[],
  flags: number = NBD_REPLY_FLAG_DONE,
): Buffer {
  const payloadBytes = 4 + BLOCK_STATUS_DESCRIPTOR_BYTES * descriptors.length;
  const buffer = Buffer.allocUnsafe(STRUCTURED_REPLY_HEADER_BYTES + payloadBytes);
  writeStructuredChunkHeader(buffer, flags, NBD_REPLY_TYPE_BLOCK_STATUS, handle, payloadBytes);
  buffer.writeUInt32BE(contextId, STRUCTURED_REPLY_HEADER_BYTES);
  let cursor = STRUCTURED_REPLY_HEADER_BYTES + 4;
  for (const descriptor of descriptors) {
    buffer.writeUInt32BE(descriptor.lengthBytes, cursor);
    buffer.writeUInt32BE(descriptor.flags, cursor + 4);
    cursor += BLOCK_STATUS_DESCRIPTOR_BYTES;
  }
  return buffer;
}
