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

const EMPTY = Buffer.alloc(0);

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
  /** The header of a PDU whose data segment has not all arrived yet. */
  private pendingBhs: Buffer | undefined;
  private pendingAhs: Buffer = EMPTY;
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
    if (this.pendingBhs === undefined) {
      const failure = this.readHeader();
      if (this.pendingBhs === undefined) {
        return failure;
      }
    }
    const bhs = this.pendingBhs;
    const ahs = this.pendingAhs;
    const dataBytes = dataSegmentLengthOf(bhs);
    const paddedBytes = dataBytes + paddingOf(dataBytes);
    const digestBytes = this.digests.data && dataBytes > 0 ? DIGEST_BYTES : 0;
    if (this.bufferedBytesCount < paddedBytes + digestBytes) {
      return undefined;
    }
    this.pendingBhs = undefined;
    this.pendingAhs = EMPTY;
    if (paddedBytes === 0) {
      return { kind: 'pdu', pdu: { bhs, ahs, data: EMPTY } };
    }
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

  /** Sets pendingBhs/pendingAhs once a whole header is here; a failure, or undefined while bytes are missing. */
  private readHeader(): ReadResult | undefined {
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
    // Never lent memory: the header outlives this call (Reject echoes it, a task keeps its CDB).
    // A view of a socket chunk is safe to keep: Node gives each read a buffer of its own.
    const header = this.take(BHS_BYTES + ahsBytes, Buffer.allocUnsafe);
    if (headerDigestBytes > 0) {
      const digest = readDigest(this.take(DIGEST_BYTES), 0);
      if (crc32c(header) !== digest) {
        return this.fail(new IscsiProtocolError('HEADER_DIGEST', 'header digest mismatch'));
      }
    }
    this.pendingBhs = ahsBytes === 0 ? header : header.subarray(0, BHS_BYTES);
    this.pendingAhs = ahsBytes === 0 ? EMPTY : header.subarray(BHS_BYTES);
    return undefined;
  }

  private fail(error: IscsiProtocolError): ReadResult {
    this.failure = { kind: 'fatal', error };
    this.chunks.length = 0;
    this.bufferedBytesCount = 0;
    return this.failure;
  }

  /** The first `count` buffered bytes without consuming them (count <= buffered); `allocate` when they span chunks. */
  private peek(count: number, allocate = this.allocate): Buffer {
    const head = this.chunks[0];
    if (head !== undefined && head.length - this.headOffset >= count) {
      return head.subarray(this.headOffset, this.headOffset + count);
    }
    const out = allocate(count); // filled completely below: count <= buffered
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
  private take(count: number, allocate = this.allocate): Buffer {
    const out = this.peek(count, allocate);
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
