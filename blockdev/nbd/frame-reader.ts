import { CLIENT_FLAGS_BYTES, NBD_CMD_WRITE, OPTION_HEADER_BYTES, REQUEST_HEADER_BYTES, optionName } from './constants.js';
import { type ClientFlags, decodeClientFlags, decodeOptionHeader, type OptionHeader } from './handshake-codec.js';
import type { BufferPool } from '../buffer-pool.js';
import { ProtocolError } from './protocol-error.js';
import { decodeRequestHeader, type RequestHeader } from './transmission-codec.js';

/**
 * Incremental splitter of the client's byte stream into NBD messages, in the
 * style of pg-protocol's parser: it never sees a socket. The shell pushes
 * chunks as they arrive and pulls complete messages with next() only while
 * it has room for more work; pulling (rather than a callback per message) is
 * what lets the connection stop at its in-flight bounds with at most the
 * current chunk and one partial message held here.
 *
 * A message wholly inside one chunk is returned as a view of that chunk (no
 * copy); one that spans chunks is assembled into a single buffer (one copy),
 * except a large WRITE payload once keepPayloadChunks is on: it comes back
 * as views of its socket chunks (payloadChunks) for one pwritev (perf round
 * 2: the assembling copy was ~12 % of the loop at 1m-write-qd8).
 */

/** Smaller spanning payloads are assembled: the copy is cheap and the device call simpler. */
export const MIN_CHUNKED_PAYLOAD_BYTES = 64 * 1024;
/** More pieces than this (a client dribbling bytes) are assembled: bounds the iovec well under IOV_MAX. */
export const MAX_WRITE_PAYLOAD_CHUNKS = 64;

export type FrameMessage = ClientFlagsMessage | OptionMessage | RequestMessage;

export interface ClientFlagsMessage {
  readonly kind: 'clientFlags';
  readonly flags: ClientFlags;
}

export interface OptionMessage {
  readonly kind: 'option';
  readonly option: number;
  readonly data: Buffer;
}

export interface RequestMessage {
  readonly kind: 'request';
  readonly header: RequestHeader;
  /** The WRITE payload; undefined for other commands, a discarded oversized WRITE, and when payloadChunks is set. */
  readonly payload: Buffer | undefined;
  /** The WRITE payload as views of the chunks it arrived in (only with keepPayloadChunks); their concatenation is the payload. */
  readonly payloadChunks?: readonly Buffer[];
  /** True for a WRITE over maxPayloadBytes whose payload is being skipped: answer EINVAL. */
  readonly payloadDiscarded: boolean;
}

export interface FrameReaderLimits {
  readonly maxOptionDataBytes: number;
  readonly maxPayloadBytes: number;
  readonly maxDiscardedWriteBytes: number;
}

type Phase = 'clientFlags' | 'options' | 'requests';

export class FrameReader {
  private readonly limits: FrameReaderLimits;
  private readonly buffers: BufferPool | undefined;
  private phase: Phase = 'clientFlags';
  private readonly chunks: Buffer[] = [];
  /** Read position inside chunks[0]. */
  private headOffset = 0;
  private bufferedBytes = 0;
  /** Bytes of an oversized WRITE payload still to throw away as they arrive. */
  private skipBytes = 0;
  private pendingOption: OptionHeader | undefined;
  private pendingRequest: RequestHeader | undefined;
  private keepPayloadChunks = false;
  /** After a protocol error the stream cannot be resynchronised: every later call returns it. */
  private failure: ProtocolError | undefined;

  /**
   * With `buffers`, a WRITE payload that spans chunks is assembled in a
   * pooled buffer; whoever consumes the request releases it (buffer-pool.ts).
   */
  constructor(limits: FrameReaderLimits, buffers?: BufferPool) {
    this.limits = limits;
    this.buffers = buffers;
  }

  /** Bytes received but not yet returned as messages. */
  get bufferedByteCount(): number {
    return this.bufferedBytes;
  }

  /**
   * Switch from options to requests: after NBD_OPT_GO's ACK or
   * NBD_OPT_EXPORT_NAME's reply. With keepPayloadChunks, large WRITE
   * payloads that span chunks come back as payloadChunks (device writev).
   */
  startTransmission(keepPayloadChunks = false): void {
    this.phase = 'requests';
    this.keepPayloadChunks = keepPayloadChunks;
  }

  push(chunk: Buffer): void {
    if (this.failure !== undefined || chunk.length === 0) {
      return;
    }
    let data = chunk;
    if (this.skipBytes > 0) {
      const skipped = Math.min(this.skipBytes, data.length);
      this.skipBytes -= skipped;
      data = data.subarray(skipped);
      if (data.length === 0) {
        return;
      }
    }
    this.chunks.push(data);
    this.bufferedBytes += data.length;
  }

  /** The next complete message, a ProtocolError (final), or undefined until more bytes arrive. */
  next(): FrameMessage | ProtocolError | undefined {
    if (this.failure !== undefined) {
      return this.failure;
    }
    const result = this.decodeNext();
    if (result instanceof ProtocolError) {
      this.fail(result);
    }
    return result;
  }

  private decodeNext(): FrameMessage | ProtocolError | undefined {
    switch (this.phase) {
      case 'clientFlags':
        return this.nextClientFlags();
      case 'options':
        return this.nextOption();
      case 'requests':
        return this.nextRequest();
    }
  }

  private nextClientFlags(): ClientFlagsMessage | ProtocolError | undefined {
    if (this.bufferedBytes < CLIENT_FLAGS_BYTES) {
      return undefined;
    }
    const flags = decodeClientFlags(this.take(CLIENT_FLAGS_BYTES));
    if (flags instanceof ProtocolError) {
      return flags;
    }
    this.phase = 'options';
    return { kind: 'clientFlags', flags };
  }

  private nextOption(): OptionMessage | ProtocolError | undefined {
    if (this.pendingOption === undefined) {
      if (this.bufferedBytes < OPTION_HEADER_BYTES) {
        return undefined;
      }
      const header = decodeOptionHeader(this.take(OPTION_HEADER_BYTES));
      if (header instanceof ProtocolError) {
        return header;
      }
      if (header.lengthBytes > this.limits.maxOptionDataBytes) {
        return new ProtocolError(
          'OPTION_TOO_LARGE',
          `option ${optionName(header.option)} carries ${header.lengthBytes} bytes, over the ${this.limits.maxOptionDataBytes}-byte limit`,
          { option: header.option, lengthBytes: header.lengthBytes },
        );
      }
      this.pendingOption = header;
    }
    const header = this.pendingOption;
    if (this.bufferedBytes < header.lengthBytes) {
      return undefined;
    }
    this.pendingOption = undefined;
    return { kind: 'option', option: header.option, data: this.take(header.lengthBytes) };
  }

  private nextRequest(): RequestMessage | ProtocolError | undefined {
    if (this.pendingRequest === undefined) {
      if (this.bufferedBytes < REQUEST_HEADER_BYTES) {
        return undefined;
      }
      const header = decodeRequestHeader(this.take(REQUEST_HEADER_BYTES));
      if (header instanceof ProtocolError) {
        return header;
      }
      if (header.type !== NBD_CMD_WRITE) {
        return { kind: 'request', header, payload: undefined, payloadDiscarded: false };
      }
      if (header.lengthBytes > this.limits.maxPayloadBytes) {
        return this.discardWritePayload(header);
      }
      this.pendingRequest = header;
    }
    const header = this.pendingRequest;
    if (this.bufferedBytes < header.lengthBytes) {
      return undefined;
    }
    this.pendingRequest = undefined;
    const chunks = this.keepPayloadChunks ? this.takeChunks(header.lengthBytes) : undefined;
    if (chunks !== undefined) {
      return { kind: 'request', header, payload: undefined, payloadChunks: chunks, payloadDiscarded: false };
    }
    return { kind: 'request', header, payload: this.take(header.lengthBytes, this.buffers), payloadDiscarded: false };
  }

  /**
   * Remove `count` buffered bytes as views of their chunks, when they are a
   * large payload spanning 2..MAX_WRITE_PAYLOAD_CHUNKS chunks; otherwise
   * take nothing and return undefined (take() handles it).
   */
  private takeChunks(count: number): Buffer[] | undefined {
    const head = this.chunks[0];
    if (count < MIN_CHUNKED_PAYLOAD_BYTES || head === undefined || head.length - this.headOffset >= count) {
      return undefined;
    }
    let pieces = 0;
    for (let covered = -this.headOffset; covered < count; pieces += 1) {
      const chunk = this.chunks[pieces];
      if (chunk === undefined || pieces >= MAX_WRITE_PAYLOAD_CHUNKS) {
        return undefined;
      }
      covered += chunk.length;
    }
    const views: Buffer[] = [];
    let remaining = count;
    while (remaining > 0) {
      const chunk = this.chunks[0];
      if (chunk === undefined) {
        throw new Error('FrameReader.takeChunks past the buffered bytes');
      }
      const available = Math.min(chunk.length - this.headOffset, remaining);
      views.push(chunk.subarray(this.headOffset, this.headOffset + available));
      remaining -= available;
      this.consume(available);
    }
    return views;
  }

  /**
   * proto.md "Block size constraints": a server MAY hard-disconnect on a
   * write payload large enough to be a denial of service. Up to
   * maxDiscardedWriteBytes we skip it instead, so the client gets EINVAL.
   */
  private discardWritePayload(header: RequestHeader): RequestMessage | ProtocolError {
    if (header.lengthBytes > this.limits.maxDiscardedWriteBytes) {
      return new ProtocolError(
        'PAYLOAD_TOO_LARGE',
        `WRITE of ${header.lengthBytes} bytes is over the ${this.limits.maxDiscardedWriteBytes}-byte limit`,
        { lengthBytes: header.lengthBytes },
      );
    }
    const fromBuffer = Math.min(this.bufferedBytes, header.lengthBytes);
    this.skip(fromBuffer);
    this.skipBytes = header.lengthBytes - fromBuffer;
    return { kind: 'request', header, payload: undefined, payloadDiscarded: true };
  }

  private fail(error: ProtocolError): void {
    this.failure = error;
    this.chunks.length = 0;
    this.headOffset = 0;
    this.bufferedBytes = 0;
  }

  /** Remove and return `count` buffered bytes (count <= bufferedBytes); assembled in `pool`'s buffer when given. */
  private take(count: number, pool?: BufferPool): Buffer {
    const head = this.chunks[0];
    if (count === 0 || head === undefined) {
      return Buffer.alloc(0);
    }
    if (head.length - this.headOffset >= count) {
      const view = head.subarray(this.headOffset, this.headOffset + count);
      this.consume(count);
      return view;
    }
    const assembled = pool === undefined ? Buffer.allocUnsafe(count) : pool.acquire(count);
    let filled = 0;
    while (filled < count) {
      const chunk = this.chunks[0];
      if (chunk === undefined) {
        throw new Error('FrameReader.take past the buffered bytes');
      }
      const available = Math.min(chunk.length - this.headOffset, count - filled);
      chunk.copy(assembled, filled, this.headOffset, this.headOffset + available);
      filled += available;
      this.consume(available);
    }
    return assembled;
  }

  private skip(count: number): void {
    let remaining = count;
    while (remaining > 0) {
      const chunk = this.chunks[0];
      if (chunk === undefined) {
        throw new Error('FrameReader.skip past the buffered bytes');
      }
      const available = Math.min(chunk.length - this.headOffset, remaining);
      this.consume(available);
      remaining -= available;
    }
  }

  /** Advance past `count` bytes of the head chunk (count <= its remaining bytes). */
  private consume(count: number): void {
    this.headOffset += count;
    this.bufferedBytes -= count;
    const head = this.chunks[0];
    if (head !== undefined && this.headOffset === head.length) {
      this.chunks.shift();
      this.headOffset = 0;
    }
  }
}
