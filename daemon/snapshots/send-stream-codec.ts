import { createHash } from 'node:crypto';
import { PlinthError } from '../../common/plinth-error.js';

/**
 * The send stream (issue 8 "Copy between clusters"; docs/snapshots.md
 * "Stream format"): a portable, versioned byte stream carrying one snapshot
 * of a volume, whole or as the difference to an earlier one. Pure functions
 * over Buffers; the decoder lives in send-stream-decoder.ts.
 *
 *   header   "PLSEND" | u16 version | u32 bodyLength | body | SHA-256(body)
 *   chunk    u8 kind ('D' data, 'Z' zero) | u32 sequence | u64 offset | u32 length
 *            | data (length bytes, 'D' only) | SHA-256(every byte of the chunk before it)
 *   trailer  u8 'T' | u32 chunkCount | 32-byte stream digest
 *
 * All integers big-endian. The stream digest chains the chunk digests:
 * chain(-1) = SHA-256("plinth-send-chain-v1" | body with firstChunk = 0),
 * chain(i) = SHA-256(chain(i-1) | digest(i)); the trailer carries the last.
 * Because the chain needs only the previous 32 bytes, a receiver that
 * durably kept (next chunk, chain) after its last verified chunk can resume
 * from a stream that starts at that chunk (header.firstChunk > 0); the
 * sender recomputes the chain over the chunks it skips (send-stream-source.ts).
 * A resumed stream repeats the header but for firstChunk, so createdAtMs is
 * the snapshot's creation time, never the time of the send.
 */
export const SEND_STREAM_MAGIC = Buffer.from('PLSEND', 'latin1');
export const SEND_STREAM_VERSION = 1;
/** Every bound a hostile stream could stretch (STYLE "a limit on everything"). */
export const MAX_CHUNK_BYTES = 4 * 1024 * 1024;
export const MAX_HEADER_BODY_BYTES = 4096;
export const MAX_STREAM_STRING_BYTES = 255;
/** 1 PiB: far beyond any volume, well inside Number.MAX_SAFE_INTEGER. */
export const MAX_STREAM_VOLUME_BYTES = 2 ** 50;
export const MAX_CHUNK_COUNT = 0xffff_ffff;
export const DEFAULT_CHUNK_BYTES = 1024 * 1024;

export const DIGEST_BYTES = 32;
export const HEADER_PREFIX_BYTES = SEND_STREAM_MAGIC.length + 2 + 4;
export const CHUNK_PREFIX_BYTES = 1 + 4 + 8 + 4;
export const TRAILER_BYTES = 1 + 4 + DIGEST_BYTES;

export const CHUNK_KIND_DATA = 0x44; // 'D'
export const CHUNK_KIND_ZERO = 0x5a; // 'Z'
export const FRAME_TRAILER = 0x54; // 'T'

const CHAIN_LABEL = Buffer.from('plinth-send-chain-v1', 'latin1');

export interface SendStreamHeader {
  readonly version: number;
  readonly sourceClusterId: string;
  readonly volumeName: string;
  readonly volumeId: string;
  readonly snapshotName: string;
  readonly snapshotId: string;
  /** The source snapshot id the stream is a difference to; null for a full stream. */
  readonly baseSnapshotId: string | null;
  /** Its name on the source, for error messages on the receiver; null for a full stream. */
  readonly baseSnapshotName: string | null;
  readonly volumeSizeBytes: number;
  readonly extentSizeBytes: number;
  readonly chunkSizeBytes: number;
  /** Chunks in the whole stream, whatever firstChunk is. */
  readonly totalChunkCount: number;
  /** 0, or the chunk a resumed stream starts at (send --from-chunk N). */
  readonly firstChunk: number;
  /** When the snapshot was taken (ms since the epoch): the same in every (resumed) send of it. */
  readonly createdAtMs: number;
}

export type ChunkKind = 'data' | 'zero';

export interface StreamChunk {
  readonly sequence: number;
  readonly offsetBytes: number;
  readonly lengthBytes: number;
  readonly kind: ChunkKind;
  /** The bytes of a data chunk (lengthBytes of them); absent for a zero chunk. */
  readonly data?: Buffer;
}

export function malformed(message: string, details: Readonly<Record<string, unknown>> = {}): PlinthError {
  return new PlinthError('STREAM_MALFORMED', `send stream: ${message}`, details);
}

/** Refuse a header a well-behaved sender never writes; decoding runs the same checks. */
export function assertHeaderBounds(header: SendStreamHeader): void {
  const integer = (name: string, value: number, min: number, max: number): void => {
    if (!Number.isSafeInteger(value) || value < min || value > max) {
      throw malformed(`header field ${name} must be an integer in [${min}, ${max}], got ${value}`, { field: name, value });
    }
  };
  integer('volumeSizeBytes', header.volumeSizeBytes, 1, MAX_STREAM_VOLUME_BYTES);
  integer('extentSizeBytes', header.extentSizeBytes, 1, 0xffff_ffff);
  integer('chunkSizeBytes', header.chunkSizeBytes, 1, MAX_CHUNK_BYTES);
  integer('totalChunkCount', header.totalChunkCount, 0, MAX_CHUNK_COUNT);
  integer('firstChunk', header.firstChunk, 0, header.totalChunkCount);
  integer('createdAtMs', header.createdAtMs, 0, Number.MAX_SAFE_INTEGER);
  // Chunks are at least one byte and never overlap.
  if (header.totalChunkCount > header.volumeSizeBytes) {
    throw malformed(`totalChunkCount ${header.totalChunkCount} exceeds the volume's ${header.volumeSizeBytes} bytes`);
  }
  if ((header.baseSnapshotId === null) !== (header.baseSnapshotName === null)) {
    throw malformed('baseSnapshotId and baseSnapshotName come together');
  }
  for (const [name, value] of stringFields(header)) {
    const bytes = Buffer.byteLength(value, 'utf8');
    if (bytes > MAX_STREAM_STRING_BYTES) throw malformed(`header field ${name} is ${bytes} bytes, at most ${MAX_STREAM_STRING_BYTES}`, { field: name });
  }
}

function stringFields(header: SendStreamHeader): Array<[string, string]> {
  return [
    ['sourceClusterId', header.sourceClusterId],
    ['volumeName', header.volumeName],
    ['volumeId', header.volumeId],
    ['snapshotName', header.snapshotName],
    ['snapshotId', header.snapshotId],
    ['baseSnapshotId', header.baseSnapshotId ?? ''],
    ['baseSnapshotName', header.baseSnapshotName ?? ''],
  ];
}

/** The header body (between the length and the digest). */
export function encodeHeaderBody(header: SendStreamHeader): Buffer {
  assertHeaderBounds(header);
  const strings = stringFields(header).map(([, value]) => Buffer.from(value, 'utf8'));
  const stringBytes = strings.reduce((sum, bytes) => sum + 1 + bytes.length, 0);
  const body = Buffer.alloc(stringBytes + 8 + 4 + 4 + 4 + 4 + 8);
  let at = 0;
  for (const bytes of strings) {
    at = body.writeUInt8(bytes.length, at);
    at += bytes.copy(body, at);
  }
  at = body.writeBigUInt64BE(BigInt(header.volumeSizeBytes), at);
  at = body.writeUInt32BE(header.extentSizeBytes, at);
  at = body.writeUInt32BE(header.chunkSizeBytes, at);
  at = body.writeUInt32BE(header.totalChunkCount, at);
  at = body.writeUInt32BE(header.firstChunk, at);
  body.writeBigUInt64BE(BigInt(header.createdAtMs), at);
  return body;
}

export function encodeHeader(header: SendStreamHeader): Buffer {
  const body = encodeHeaderBody(header);
  const prefix = Buffer.alloc(HEADER_PREFIX_BYTES);
  SEND_STREAM_MAGIC.copy(prefix, 0);
  prefix.writeUInt16BE(header.version, SEND_STREAM_MAGIC.length);
  prefix.writeUInt32BE(body.length, SEND_STREAM_MAGIC.length + 2);
  return Buffer.concat([prefix, body, sha256(body)]);
}

/** Decode a header body whose digest already matched. */
export function decodeHeaderBody(version: number, body: Buffer): SendStreamHeader {
  let at = 0;
  const readString = (field: string): string => {
    if (at + 1 > body.length) throw malformed(`header ends inside field ${field}`, { field });
    const length = body.readUInt8(at);
    at += 1;
    if (at + length > body.length) throw malformed(`header ends inside field ${field}`, { field });
    const value = body.toString('utf8', at, at + length);
    at += length;
    return value;
  };
  const [sourceClusterId, volumeName, volumeId, snapshotName, snapshotId, baseId, baseName] = [
    'sourceClusterId', 'volumeName', 'volumeId', 'snapshotName', 'snapshotId', 'baseSnapshotId', 'baseSnapshotName',
  ].map(readString) as [string, string, string, string, string, string, string];
  if (body.length - at !== 32) throw malformed(`header body has ${body.length - at} bytes of numbers, expected 32`);
  const header: SendStreamHeader = {
    version,
    sourceClusterId,
    volumeName,
    volumeId,
    snapshotName,
    snapshotId,
    baseSnapshotId: baseId === '' ? null : baseId,
    baseSnapshotName: baseId === '' ? null : baseName,
    volumeSizeBytes: safeNumber(body.readBigUInt64BE(at), 'volumeSizeBytes'),
    extentSizeBytes: body.readUInt32BE(at + 8),
    chunkSizeBytes: body.readUInt32BE(at + 12),
    totalChunkCount: body.readUInt32BE(at + 16),
    firstChunk: body.readUInt32BE(at + 20),
    createdAtMs: safeNumber(body.readBigUInt64BE(at + 24), 'createdAtMs'),
  };
  assertHeaderBounds(header);
  return header;
}

function safeNumber(value: bigint, field: string): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw malformed(`header field ${field} is too large`, { field });
  return Number(value);
}

/** chain(-1): the stream digest before any chunk; independent of firstChunk so a resumed stream chains the same. */
export function chainSeed(header: SendStreamHeader): Buffer {
  return createHash('sha256').update(CHAIN_LABEL).update(encodeHeaderBody({ ...header, firstChunk: 0 })).digest();
}

export function nextChain(chain: Buffer, chunkDigest: Buffer): Buffer {
  return createHash('sha256').update(chain).update(chunkDigest).digest();
}

export function encodeChunkPrefix(chunk: StreamChunk): Buffer {
  const prefix = Buffer.alloc(CHUNK_PREFIX_BYTES);
  prefix.writeUInt8(chunk.kind === 'data' ? CHUNK_KIND_DATA : CHUNK_KIND_ZERO, 0);
  prefix.writeUInt32BE(chunk.sequence, 1);
  prefix.writeBigUInt64BE(BigInt(chunk.offsetBytes), 5);
  prefix.writeUInt32BE(chunk.lengthBytes, 13);
  return prefix;
}

export function chunkDigest(prefix: Buffer, data: Buffer | undefined): Buffer {
  const hash = createHash('sha256').update(prefix);
  if (data !== undefined) hash.update(data);
  return hash.digest();
}

export interface EncodedChunk {
  /** The frame as pieces (prefix, data, digest): the data buffer is not copied. */
  readonly pieces: readonly Buffer[];
  readonly digest: Buffer;
}

export function encodeChunk(chunk: StreamChunk): EncodedChunk {
  if (!Number.isSafeInteger(chunk.lengthBytes) || chunk.lengthBytes < 1 || chunk.lengthBytes > MAX_CHUNK_BYTES) {
    throw malformed(`chunk ${chunk.sequence}: length ${chunk.lengthBytes} outside [1, ${MAX_CHUNK_BYTES}]`);
  }
  if (chunk.kind === 'data' && chunk.data?.length !== chunk.lengthBytes) {
    throw malformed(`chunk ${chunk.sequence}: a data chunk carries exactly lengthBytes of data`);
  }
  const prefix = encodeChunkPrefix(chunk);
  const data = chunk.kind === 'data' ? chunk.data : undefined;
  const digest = chunkDigest(prefix, data);
  return { pieces: data === undefined ? [prefix, digest] : [prefix, data, digest], digest };
}

export function encodeTrailer(chunkCount: number, streamDigest: Buffer): Buffer {
  const trailer = Buffer.alloc(TRAILER_BYTES);
  trailer.writeUInt8(FRAME_TRAILER, 0);
  trailer.writeUInt32BE(chunkCount, 1);
  streamDigest.copy(trailer, 5);
  return trailer;
}

export function sha256(data: Buffer): Buffer {
  return createHash('sha256').update(data).digest();
}
