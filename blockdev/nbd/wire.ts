import { isUtf8 } from 'node:buffer';
import { MAX_STRING_BYTES } from './constants.js';
import { ProtocolError } from './protocol-error.js';

/**
 * Small helpers shared by the NBD codecs: 64-bit fields as JS numbers and
 * proto.md "Conventions" strings (UTF-8, no NUL, at most 4096 bytes).
 */

const TWO_POW_32 = 0x1_0000_0000;

/**
 * Read an unsigned 64-bit big-endian field as a number. Values beyond
 * Number.MAX_SAFE_INTEGER come back inexact but still above it, so a range
 * check with Number.isSafeInteger rejects them.
 */
export function readUint64(buffer: Buffer, offset: number): number {
  return buffer.readUInt32BE(offset) * TWO_POW_32 + buffer.readUInt32BE(offset + 4);
}

/** Write a non-negative safe integer as an unsigned 64-bit big-endian field. */
export function writeUint64(buffer: Buffer, value: number, offset: number): void {
  buffer.writeUInt32BE(Math.floor(value / TWO_POW_32), offset);
  buffer.writeUInt32BE(value % TWO_POW_32, offset + 4);
}

/** Decode a protocol string, refusing what proto.md says a string MUST NOT be. */
export function decodeString(bytes: Buffer, what: string): string | ProtocolError {
  if (bytes.length > MAX_STRING_BYTES) {
    return new ProtocolError('BAD_STRING', `${what} is ${bytes.length} bytes, over the 4096-byte string limit`, {
      lengthBytes: bytes.length,
    });
  }
  if (bytes.includes(0)) {
    return new ProtocolError('BAD_STRING', `${what} contains a NUL byte`);
  }
  if (!isUtf8(bytes)) {
    return new ProtocolError('BAD_STRING', `${what} is not valid UTF-8`);
  }
  return bytes.toString('utf8');
}

/** UTF-8 bytes of a string we send, cut at a character boundary to fit `maxBytes`. */
export function encodeBoundedString(text: string, maxBytes: number = MAX_STRING_BYTES): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) {
    return bytes;
  }
  let end = maxBytes;
  // Step back over UTF-8 continuation bytes (10xxxxxx) so no character is split.
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) {
    end -= 1;
  }
  return bytes.subarray(0, end);
}
