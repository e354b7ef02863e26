import { IscsiProtocolError } from './protocol-error.js';

/**
 * The text format of Login and Text PDUs (RFC 7143 §6.1): key=value pairs,
 * each terminated by a NUL, UTF-8, keys up to 63 bytes. A pair may span
 * PDUs (C bit), so callers join segments before decoding.
 */

export interface TextPair {
  readonly key: string;
  readonly value: string;
}

/** §6.1: key names are at most 63 bytes. */
export const MAX_KEY_BYTES = 63;
/** §6.1 allows 255 bytes per value, except binary values such as CHAP_C up to 8192 bytes of encoding (§12.1.3). */
export const MAX_VALUE_BYTES = 8192;

const KEY_PATTERN = /^[A-Za-z0-9.\-+@_]+$/;

export function decodeTextPairs(data: Buffer): TextPair[] | IscsiProtocolError {
  const pairs: TextPair[] = [];
  let start = 0;
  while (start < data.length) {
    let end = data.indexOf(0, start);
    if (end === -1) {
      // §6.1 requires the NUL; some initiators omit the last one, tolerate that.
      end = data.length;
    }
    if (end > start) {
      const pair = decodePair(data.subarray(start, end));
      if (pair instanceof IscsiProtocolError) {
        return pair;
      }
      pairs.push(pair);
    }
    start = end + 1;
  }
  return pairs;
}

function decodePair(bytes: Buffer): TextPair | IscsiProtocolError {
  const equals = bytes.indexOf(0x3d);
  if (equals <= 0) {
    return new IscsiProtocolError('BAD_TEXT', 'text segment is not key=value', { text: bytes.toString('latin1').slice(0, 64) });
  }
  const key = bytes.subarray(0, equals).toString('utf8');
  if (equals > MAX_KEY_BYTES || !KEY_PATTERN.test(key)) {
    return new IscsiProtocolError('BAD_TEXT', `bad key name "${key.slice(0, 64)}"`, { key: key.slice(0, 64) });
  }
  if (bytes.length - equals - 1 > MAX_VALUE_BYTES) {
    return new IscsiProtocolError('BAD_TEXT', `value of ${key} is too long`, { key });
  }
  return { key, value: bytes.subarray(equals + 1).toString('utf8') };
}

export function encodeTextPairs(pairs: readonly TextPair[]): Buffer {
  return Buffer.concat(pairs.map((pair) => Buffer.from(`${pair.key}=${pair.value}\0`, 'utf8')));
}

/** Collects the segments of a multi-PDU text (C bit, §11.10.2), bounded. */
export class TextAccumulator {
  private readonly parts: Buffer[] = [];
  private byteCount = 0;
  private readonly maxBytes: number;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes;
  }

  append(data: Buffer): IscsiProtocolError | undefined {
    this.byteCount += data.length;
    if (this.byteCount > this.maxBytes) {
      return new IscsiProtocolError('TOO_LARGE', `text of more than ${this.maxBytes} bytes`, { limit: this.maxBytes });
    }
    if (data.length > 0) {
      this.parts.push(Buffer.from(data));
    }
    return undefined;
  }

  /** The whole text so far; resets the accumulator. */
  take(): Buffer {
    const whole = Buffer.concat(this.parts);
    this.parts.length = 0;
    this.byteCount = 0;
    return whole;
  }
}
