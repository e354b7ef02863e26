import { crc32c, readDigest } from './crc32c.js';
import { BHS_BYTES, DIGEST_BYTES } from './iscsi-constants.js';
import { dataSegmentLengthOf, type DigestSettings, NO_DIGESTS, paddingOf, type RawPdu, totalAhsBytesOf } from './pdu-frame.js';
import { IscsiProtocolError } from './protocol-error.js';

/**
 * Incremental splitter of an initiator's byte stream into PDUs (RFC 7143
 * §11.2), in pg-protocol's style: it never sees a socket. The shell pushes
 * chunks and pulls whole PDUs with next() while it has room for more work.
 * Every length is checked against a limit before anything is buffered for
 * it. Digests switch on with setDigests() once login has negotiated them
 * (§13.1: they apply from the first PDU after the final Login Response).
 */

const NO_AHS = Buffer.alloc(0);

export type ReadResult =
  | { readonly kind: 'pdu'; readonly pdu: RawPdu }
  /** The data digest did not match: the header is sound, so the PDU can be rejected (§7.8). */
  | { readonly kind: 'data-digest-error'; readonly bhs: Buffer; readonly error: IscsiProtocolError }
  /** The stream cannot be resynchronised: drop the connection. */
  | { readonly kind: 'fatal'; readonly error: IscsiProtocolError };

export interface PduReaderLimits {
  /** Our declared MaxRecvDataSegmentLength (§13.12); never below 8192 during login. */
  readonly maxDataSegmentBytes: number;
  /**
   * Memory for bytes that span socket chunks (default Buffer.allocUnsafe).
   * The connection lends recycled buffers here: a fresh 256 KiB buffer per
   * Data-Out PDU was external memory that kept V8 in major GCs (~20 % of
   * the loop at 1 MiB writes, qd8).
   */
  readonly allocate?: (lengthBytes: number) => Buffer;
}

export class PduReader {
  private maxDataSegmentBytes: number;
  private readonly allocate: (lengthBytes: number) => Buffer;
  private digests: DigestSettings = NO_DIGESTS;
  private readonly chunks: Buffer[] = [];
  private headOffset = 0;
  private bufferedBytesCount = 0;
  private pendingHeader: { bhs: Buffer; ahs: Buffer } | undefined;
  private failure: ReadResult | undefined;

  constructor(limits: PduReaderLimits) {
    this.maxDataSegmentBytes = limits.maxDataSegmentBytes;
    this.allocate = limits.allocate ?? Buffer.allocUnsafe;
  }

  setDigests(digests: DigestSettings): void {
    this.digests = digests;
  }

  setMaxDataSegmentBytes(bytes: number): void {
    this.maxDataSegmentBytes = bytes;
  }

  bufferedBytes(): number {
    return this.bufferedBytesCount;
  }

  push(chunk: Buffer): void {
    if (this.failure !== undefined || chunk.length === 0) {
      return;
    }
    this.chunks.push(chunk);
    this.bufferedBytesCount += chunk.length;
  }

  /** The next PDU, an error, or undefined when more bytes are needed. */
  next(): ReadResult | undefined {
    if (this.failure !== undefined) {
      return this.failure;
    }
    if (this.pendingHeader === undefined) {
      const header = this.readHeader();
      if (header === undefined || 'kind' in header) {
        return header;
      }
      this.pendingHeader = header;
    }
    const { bhs, ahs } = this.pendingHeader;
    const dataBytes = dataSegmentLengthOf(bhs);
    const paddedBytes = dataBytes + paddingOf(dataBytes);
    const digestBytes = this.digests.data && dataBytes > 0 ? DIGEST_BYTES : 0;
    if (this.bufferedBytesCount < paddedBytes + digestBytes) {
      return undefined;
    }
    this.pendingHeader = undefined;
    const padded = this.take(paddedBytes);
    if (digestBytes > 0) {
      const digest = readDigest(this.take(DIGEST_BYTES), 0);
      if (crc32c(padded) !== digest) {
        const error = new IscsiProtocolError('DATA_DIGEST', 'data digest mismatch', { opcode: (bhs[0] ?? 0) & 0x3f });
        return { kind: 'data-digest-error', bhs, error };
      }
    }
    return { kind: 'pdu', pdu: { bhs, ahs, data: padded.subarray(0, dataBytes) } };
  }

  private readHeader(): { bhs: Buffer; ahs: Buffer } | ReadResult | undefined {
    if (this.bufferedBytesCount < BHS_BYTES) {
      return undefined;
    }
    const peek = this.peek(BHS_BYTES);
    const ahsBytes = totalAhsBytesOf(peek);
    const dataBytes = dataSegmentLengthOf(peek);
    if (dataBytes > this.maxDataSegmentBytes) {
      return this.fail(
        new IscsiProtocolError('TOO_LARGE', `data segment of ${dataBytes} bytes exceeds MaxRecvDataSegmentLength ${this.maxDataSegmentBytes}`, {
          dataBytes,
          limit: this.maxDataSegmentBytes,
        }),
      );
    }
    const headerDigestBytes = this.digests.header ? DIGEST_BYTES : 0;
    if (this.bufferedBytesCount < BHS_BYTES + ahsBytes + headerDigestBytes) {
      return undefined;
    }
    const header = this.take(BHS_BYTES + ahsBytes);
    if (headerDigestBytes > 0) {
      const digest = readDigest(this.take(DIGEST_BYTES), 0);
      if (crc32c(header) !== digest) {
        return this.fail(new IscsiProtocolError('HEADER_DIGEST', 'header digest mismatch'));
      }
    }
    // Own copies: the header outlives the socket chunk (Reject echoes it, tasks keep fields).
    return { bhs: Buffer.from(header.subarray(0, BHS_BYTES)), ahs: ahsBytes === 0 ? NO_AHS : Buffer.from(header.subarray(BHS_BYTES)) };
  }

  private fail(error: IscsiProtocolError): ReadResult {
    this.failure = { kind: 'fatal', error };
    this.chunks.length = 0;
    this.bufferedBytesCount = 0;
    return this.failure;
  }

  /** The first `count` buffered bytes without consuming them (count <= buffered). */
  private peek(count: number): Buffer {
    const head = this.chunks[0];
    if (head !== undefined && head.length - this.headOffset >= count) {
      return head.subarray(this.headOffset, this.headOffset + count);
    }
    const out = this.allocate(count); // filled completely below: count <= buffered
    let copied = 0;
    let offset = this.headOffset;
    for (const chunk of this.chunks) {
      copied += chunk.copy(out, copied, offset, Math.min(chunk.length, offset + count - copied));
      offset = 0;
      if (copied === count) break;
    }
    return out;
  }

  /** Consume `count` bytes (count <= buffered): a view when inside one chunk, else one copy. */
  private take(count: number): Buffer {
    const out = this.peek(count);
    let remaining = count;
    while (remaining > 0) {
      const head = this.chunks[0];
      if (head === undefined) break;
      const available = head.length - this.headOffset;
      if (available > remaining) {
        this.headOffset += remaining;
        remaining = 0;
      } else {
        remaining -= available;
        this.chunks.shift();
        this.headOffset = 0;
      }
    }
    this.bufferedBytesCount -= count;
    return out;
  }
}
