import { timingSafeEqual } from 'node:crypto';
import { PlinthError } from '../../common/plinth-error.js';
import {
  CHUNK_KIND_DATA,
  CHUNK_KIND_ZERO,
  CHUNK_PREFIX_BYTES,
  chainSeed,
  chunkDigest,
  decodeHeaderBody,
  DIGEST_BYTES,
  FRAME_TRAILER,
  HEADER_PREFIX_BYTES,
  MAX_HEADER_BODY_BYTES,
  nextChain,
  SEND_STREAM_MAGIC,
  SEND_STREAM_VERSION,
  sha256,
  TRAILER_BYTES,
  type SendStreamHeader,
  type StreamChunk,
} from './send-stream-codec.js';

/**
 * Incremental parser of a send stream (format in send-stream-codec.ts): feed
 * it Buffers split anywhere, get verified events back. Nothing is emitted
 * before it is verified: a chunk only after its digest matched, the end only
 * after the chain matched the trailer. It never holds more than one frame
 * (a chunk is at most header.chunkSizeBytes ≤ MAX_CHUNK_BYTES, checked
 * before its data is awaited) beyond what the caller pushed.
 *
 * Chunk data may be a view into a pushed Buffer: callers must not reuse
 * pushed Buffers while they still use the chunk.
 */
export interface ResumePoint {
  /** The first chunk the receiver still needs. */
  readonly nextChunk: number;
  /** The stream digest chain after chunk nextChunk - 1. */
  readonly chainDigest: Buffer;
  /** Where chunk nextChunk - 1 ended: chunks never go backwards. */
  readonly minOffsetBytes: number;
}

export type SendStreamEvent =
  | { readonly type: 'header'; readonly header: SendStreamHeader }
  /** `chain` is the digest chain after this chunk: with sequence + 1 and the chunk's end, the resume point. */
  | { readonly type: 'chunk'; readonly chunk: StreamChunk; readonly chain: Buffer }
  | { readonly type: 'end'; readonly chunkCount: number; readonly streamDigest: Buffer };

type Phase = 'header' | 'frames' | 'done' | 'failed';

export class SendStreamDecoder {
  readonly #resume: ResumePoint | undefined;
  readonly #pending: Buffer[] = [];
  #pendingBytes = 0;
  #phase: Phase = 'header';
  #header: SendStreamHeader | undefined;
  #nextSequence = 0;
  #minOffsetBytes = 0;
  #chain: Buffer = Buffer.alloc(DIGEST_BYTES);
  /** Offset of the next unparsed byte in the whole stream, for error details. */
  #streamOffset = 0;

  constructor(options: { readonly resume?: ResumePoint } = {}) {
    this.#resume = options.resume;
  }

  get header(): SendStreamHeader | undefined {
    return this.#header;
  }

  get done(): boolean {
    return this.#phase === 'done';
  }

  /** Parse what `bytes` completes; throws a STREAM_* PlinthError at the first fault (the decoder is then unusable). */
  push(bytes: Buffer): SendStreamEvent[] {
    if (this.#phase === 'failed') throw new PlinthError('STREAM_MALFORMED', 'send stream: the decoder already refused this stream');
    if (bytes.length === 0) return [];
    if (this.#phase === 'done') throw this.#error('STREAM_MALFORMED', `${bytes.length} bytes after the trailer`);
    this.#pending.push(bytes);
    this.#pendingBytes += bytes.length;
    const events: SendStreamEvent[] = [];
    for (;;) {
      const event = this.#phase === 'header' ? this.#parseHeader() : this.#parseFrame();
      if (event === undefined) break;
      events.push(event);
      if (event.type === 'end') {
        if (this.#pendingBytes > 0) throw this.#error('STREAM_MALFORMED', `${this.#pendingBytes} bytes after the trailer`);
        break;
      }
    }
    return events;
  }

  /** The input ended: anything short of a verified trailer is a truncated stream. */
  finish(): void {
    if (this.#phase === 'done') return;
    if (this.#phase === 'failed') throw new PlinthError('STREAM_MALFORMED', 'send stream: the decoder already refused this stream');
    const where = this.#header === undefined ? 'in the header' : `at chunk ${this.#nextSequence} of ${this.#header.totalChunkCount}`;
    throw this.#error('STREAM_TRUNCATED', `the stream ended ${where} (${this.#pendingBytes} bytes of an incomplete frame)`, {
      nextChunk: this.#nextSequence,
    });
  }

  #parseHeader(): SendStreamEvent | undefined {
    const magicBytes = SEND_STREAM_MAGIC.length;
    if (this.#pendingBytes > 0) {
      const seen = this.#peek(Math.min(magicBytes, this.#pendingBytes));
      if (!seen.equals(SEND_STREAM_MAGIC.subarray(0, seen.length))) {
        throw this.#error('STREAM_BAD_MAGIC', `not a Plinth send stream: it starts with ${JSON.stringify(seen.toString('latin1'))}, not "PLSEND"`);
      }
    }
    if (this.#pendingBytes < HEADER_PREFIX_BYTES) return undefined;
    const prefix = this.#peek(HEADER_PREFIX_BYTES);
    const version = prefix.readUInt16BE(magicBytes);
    if (version !== SEND_STREAM_VERSION) {
      throw this.#error('STREAM_BAD_VERSION', `send stream version ${version} is not supported (this daemon reads version ${SEND_STREAM_VERSION})`, { version });
    }
    const bodyBytes = prefix.readUInt32BE(magicBytes + 2);
    if (bodyBytes > MAX_HEADER_BODY_BYTES) {
      throw this.#error('STREAM_MALFORMED', `header of ${bodyBytes} bytes exceeds ${MAX_HEADER_BODY_BYTES}`, { bodyBytes });
    }
    const frameBytes = HEADER_PREFIX_BYTES + bodyBytes + DIGEST_BYTES;
    if (this.#pendingBytes < frameBytes) return undefined;
    const frame = this.#take(frameBytes);
    const body = frame.subarray(HEADER_PREFIX_BYTES, HEADER_PREFIX_BYTES + bodyBytes);
    if (!digestsEqual(sha256(body), frame.subarray(HEADER_PREFIX_BYTES + bodyBytes))) {
      throw this.#error('STREAM_CHECKSUM_MISMATCH', 'the header checksum does not match its content', { frame: 'header' });
    }
    const header = decodeHeaderBody(version, body);
    this.#startChunks(header);
    this.#phase = 'frames';
    this.#streamOffset += frameBytes;
    return { type: 'header', header };
  }

  #startChunks(header: SendStreamHeader): void {
    this.#header = header;
    const resume = this.#resume;
    const expectedFirst = resume?.nextChunk ?? 0;
    if (header.firstChunk !== expectedFirst) {
      throw this.#error(
        'STREAM_OUT_OF_ORDER',
        resume === undefined
          ? `the stream resumes at chunk ${header.firstChunk}; receive it with --resume`
          : `the stream starts at chunk ${header.firstChunk} but the receiver needs chunk ${expectedFirst} next (send --from-chunk ${expectedFirst})`,
        { firstChunk: header.firstChunk, expectedChunk: expectedFirst },
      );
    }
    this.#nextSequence = expectedFirst;
    this.#chain = resume === undefined || resume.nextChunk === 0 ? chainSeed(header) : resume.chainDigest;
    this.#minOffsetBytes = resume?.minOffsetBytes ?? 0;
  }

  #parseFrame(): SendStreamEvent | undefined {
    if (this.#pendingBytes < 1) return undefined;
    const kind = this.#peek(1).readUInt8(0);
    if (kind === FRAME_TRAILER) return this.#parseTrailer();
    if (kind !== CHUNK_KIND_DATA && kind !== CHUNK_KIND_ZERO) {
      throw this.#error('STREAM_MALFORMED', `unknown frame kind 0x${kind.toString(16)} at chunk ${this.#nextSequence}`, { kind });
    }
    if (this.#pendingBytes < CHUNK_PREFIX_BYTES) return undefined;
    const prefix = this.#peek(CHUNK_PREFIX_BYTES);
    const chunkFields = this.#checkChunkPrefix(prefix);
    const dataBytes = kind === CHUNK_KIND_DATA ? chunkFields.lengthBytes : 0;
    const frameBytes = CHUNK_PREFIX_BYTES + dataBytes + DIGEST_BYTES;
    if (this.#pendingBytes < frameBytes) return undefined;
    const frame = this.#take(frameBytes);
    const data = dataBytes === 0 ? undefined : frame.subarray(CHUNK_PREFIX_BYTES, CHUNK_PREFIX_BYTES + dataBytes);
    const digest = chunkDigest(frame.subarray(0, CHUNK_PREFIX_BYTES), data);
    if (!digestsEqual(digest, frame.subarray(CHUNK_PREFIX_BYTES + dataBytes))) {
      throw this.#error('STREAM_CHECKSUM_MISMATCH', `chunk ${chunkFields.sequence} (offset ${chunkFields.offsetBytes}) fails its checksum`, {
        chunk: chunkFields.sequence,
        offsetBytes: chunkFields.offsetBytes,
      });
    }
    this.#chain = nextChain(this.#chain, digest);
    this.#nextSequence += 1;
    this.#minOffsetBytes = chunkFields.offsetBytes + chunkFields.lengthBytes;
    this.#streamOffset += frameBytes;
    const chunk: StreamChunk = data === undefined ? { ...chunkFields, kind: 'zero' } : { ...chunkFields, kind: 'data', data };
    return { type: 'chunk', chunk, chain: this.#chain };
  }

  /** Validate the fixed fields before any data is awaited: a hostile length never makes us buffer. */
  #checkChunkPrefix(prefix: Buffer): { sequence: number; offsetBytes: number; lengthBytes: number } {
    const header = this.#requireHeader();
    const sequence = prefix.readUInt32BE(1);
    const offset = prefix.readBigUInt64BE(5);
    const lengthBytes = prefix.readUInt32BE(13);
    if (sequence !== this.#nextSequence) {
      throw this.#error('STREAM_OUT_OF_ORDER', `chunk ${sequence} arrived where chunk ${this.#nextSequence} belongs`, {
        chunk: sequence,
        expectedChunk: this.#nextSequence,
      });
    }
    if (sequence >= header.totalChunkCount) {
      throw this.#error('STREAM_OUT_OF_RANGE', `chunk ${sequence} is past the ${header.totalChunkCount} chunks the header announced`, { chunk: sequence });
    }
    if (lengthBytes < 1 || lengthBytes > header.chunkSizeBytes) {
      throw this.#error('STREAM_OUT_OF_RANGE', `chunk ${sequence} claims ${lengthBytes} bytes; chunks are 1 to ${header.chunkSizeBytes}`, { chunk: sequence, lengthBytes });
    }
    if (offset + BigInt(lengthBytes) > BigInt(header.volumeSizeBytes)) {
      throw this.#error('STREAM_OUT_OF_RANGE', `chunk ${sequence} at offset ${offset} + ${lengthBytes} ends past the volume's ${header.volumeSizeBytes} bytes`, {
        chunk: sequence,
        offsetBytes: offset.toString(),
      });
    }
    const offsetBytes = Number(offset);
    if (offsetBytes < this.#minOffsetBytes) {
      throw this.#error('STREAM_OUT_OF_ORDER', `chunk ${sequence} at offset ${offsetBytes} overlaps or precedes the previous chunk (ended at ${this.#minOffsetBytes})`, {
        chunk: sequence,
        offsetBytes,
      });
    }
    return { sequence, offsetBytes, lengthBytes };
  }

  #parseTrailer(): SendStreamEvent | undefined {
    if (this.#pendingBytes < TRAILER_BYTES) return undefined;
    const header = this.#requireHeader();
    const trailer = this.#take(TRAILER_BYTES);
    const chunkCount = trailer.readUInt32BE(1);
    if (chunkCount !== header.totalChunkCount || this.#nextSequence !== header.totalChunkCount) {
      throw this.#error(
        this.#nextSequence < header.totalChunkCount ? 'STREAM_TRUNCATED' : 'STREAM_MALFORMED',
        `the trailer counts ${chunkCount} chunks after ${this.#nextSequence} arrived; the header announced ${header.totalChunkCount}`,
        { chunkCount, received: this.#nextSequence, announced: header.totalChunkCount },
      );
    }
    const streamDigest = trailer.subarray(5);
    if (!digestsEqual(streamDigest, this.#chain)) {
      throw this.#error('STREAM_CHECKSUM_MISMATCH', 'the whole-stream checksum in the trailer does not match the chunks received', { frame: 'trailer' });
    }
    this.#phase = 'done';
    this.#streamOffset += TRAILER_BYTES;
    return { type: 'end', chunkCount, streamDigest: Buffer.from(streamDigest) };
  }

  #requireHeader(): SendStreamHeader {
    if (this.#header === undefined) throw new PlinthError('INTERNAL', 'send stream decoder: frame before header');
    return this.#header;
  }

  /** The first `length` pending bytes without consuming them (joins at most what is needed). */
  #peek(length: number): Buffer {
    const first = this.#pending[0];
    if (first !== undefined && first.length >= length) return first.subarray(0, length);
    const joined = Buffer.concat(this.#pending);
    this.#pending.splice(0, this.#pending.length, joined);
    return joined.subarray(0, length);
  }

  #take(length: number): Buffer {
    const taken = this.#peek(length);
    const first = this.#pending[0];
    if (first === undefined) throw new PlinthError('INTERNAL', 'send stream decoder: take past the pending bytes');
    if (first.length === length) this.#pending.shift();
    else this.#pending[0] = first.subarray(length);
    this.#pendingBytes -= length;
    return taken;
  }

  #error(code: 'STREAM_BAD_MAGIC' | 'STREAM_BAD_VERSION' | 'STREAM_MALFORMED' | 'STREAM_CHECKSUM_MISMATCH' | 'STREAM_TRUNCATED' | 'STREAM_OUT_OF_ORDER' | 'STREAM_OUT_OF_RANGE', message: string, details: Readonly<Record<string, unknown>> = {}): PlinthError {
    this.#phase = 'failed';
    return new PlinthError(code, `send stream: ${message}`, { ...details, streamOffset: this.#streamOffset });
  }
}

function digestsEqual(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
