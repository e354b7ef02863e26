import {
  FRAME_LENGTH_BYTES,
  isOpcode,
  isStatus,
  KNOWN_FLAGS,
  MAX_VOLUME_ID_BYTES,
  Opcode,
  PROTOCOL_VERSION,
  REPLY_HEADER_BYTES,
  REPLY_MAGIC,
  type ReplicaReply,
  type ReplicaRequest,
  REQUEST_HEADER_BYTES,
  REQUEST_MAGIC,
  ReplicaProtocolError,
} from './replica-protocol.js';
import { checkSnapshotPayload, SNAPSHOT_OPS } from './snapshot-payloads.js';

/**
 * Pure encoders and decoders of replication frames (layout in
 * replica-protocol.ts). Decoders validate every field once, here at the
 * edge, and return a ReplicaProtocolError instead of throwing.
 */

const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/** Ops whose request carries a payload; every other op must carry none. */
const PAYLOAD_OPS: ReadonlySet<number> = new Set([Opcode.WRITE, Opcode.HELLO, Opcode.GET_DIRTY, ...SNAPSHOT_OPS]);
/** Ops that do not name a volume. */
const VOLUMELESS_OPS: ReadonlySet<number> = new Set([Opcode.HELLO, Opcode.PING]);
export const DIRTY_MARKER_BYTES = 8;

// Two 32-bit halves instead of BigInt: these run several times per request on the data path.
const TWO_POW_32 = 2 ** 32;
/** Largest high half of a safe integer (2^53 - 1). */
const MAX_SAFE_HIGH_WORD = 0x1fffff;

function writeU64(buffer: Buffer, value: number, offset: number): void {
  buffer.writeUInt32BE(Math.floor(value / TWO_POW_32), offset);
  buffer.writeUInt32BE(value >>> 0, offset + 4);
}

function readU64(buffer: Buffer, offset: number, field: string): number | ReplicaProtocolError {
  const high = buffer.readUInt32BE(offset);
  if (high > MAX_SAFE_HIGH_WORD) {
    const value = buffer.readBigUInt64BE(offset);
    return new ReplicaProtocolError('BAD_NUMBER', `${field} ${value} is above 2^53`, { field });
  }
  return high * TWO_POW_32 + buffer.readUInt32BE(offset + 4);
}

function assertU64(value: number, field: string): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new ReplicaProtocolError('BAD_NUMBER', `${field} must be a non-negative safe integer, got ${value}`, { field });
  }
}

/**
 * Payloads up to this size are copied into the frame (one buffer to write);
 * larger ones follow the frame head as their own chunk, so a 4 MiB write is
 * not copied on its way to the socket.
 */
export const INLINE_PAYLOAD_MAX_BYTES = 64 * 1024;

/** Encode a request as one length-prefixed frame. Throws on values the wire cannot carry (a caller bug). */
export function encodeRequest(request: ReplicaRequest): Buffer {
  const frame = Buffer.allocUnsafe(requestFrameBytes(request, true));
  encodeRequestInto(request, frame, 0, true);
  return frame;
}

/** Bytes encodeRequestInto writes: the whole frame, or without the payload when it is not inline. */
export function requestFrameBytes(request: ReplicaRequest, inlinePayload: boolean): number {
  return FRAME_LENGTH_BYTES + REQUEST_HEADER_BYTES + Buffer.byteLength(request.volumeId, 'utf8') + (inlinePayload ? request.payload.length : 0);
}

/**
 * Encode a request frame into `target` at `at` (requestFrameBytes of room),
 * so a writer can gather many frames in one buffer (outgoing-frames.ts).
 * Without `inlinePayload` the payload must follow as its own chunk. Throws
 * on values the wire cannot carry (a caller bug).
 */
export function encodeRequestInto(request: ReplicaRequest, target: Buffer, at: number, inlinePayload: boolean): void {
  const volumeIdLength = Buffer.byteLength(request.volumeId, 'utf8');
  if (volumeIdLength > MAX_VOLUME_ID_BYTES) {
    throw new ReplicaProtocolError('BAD_STRING', `volume id of ${volumeIdLength} bytes is over ${MAX_VOLUME_ID_BYTES}`);
  }
  assertU64(request.requestId, 'requestId');
  assertU64(request.generation, 'generation');
  assertU64(request.offset, 'offset');
  assertU64(request.lengthBytes, 'lengthBytes');
  const payload = request.payload;
  target.writeUInt32BE(REQUEST_HEADER_BYTES + volumeIdLength + payload.length, at);
  const header = at + FRAME_LENGTH_BYTES;
  target.writeUInt32BE(REQUEST_MAGIC, header);
  target.writeUInt8(PROTOCOL_VERSION, header + 4);
  target.writeUInt8(request.opcode, header + 5);
  target.writeUInt16BE(request.flags, header + 6);
  writeU64(target, request.requestId, header + 8);
  writeU64(target, request.generation, header + 16);
  writeU64(target, request.offset, header + 24);
  writeU64(target, request.lengthBytes, header + 32);
  target.writeUInt8(volumeIdLength, header + 40);
  target.write(request.volumeId, header + REQUEST_HEADER_BYTES, volumeIdLength, 'utf8');
  if (inlinePayload) payload.copy(target, header + REQUEST_HEADER_BYTES + volumeIdLength);
}

/** Decode the body of one request frame (without its length prefix). */
export function decodeRequest(body: Buffer): ReplicaRequest | ReplicaProtocolError {
  if (body.length < REQUEST_HEADER_BYTES) {
    return new ReplicaProtocolError('TRUNCATED', `request of ${body.length} bytes is shorter than its ${REQUEST_HEADER_BYTES}-byte header`);
  }
  const magic = body.readUInt32BE(0);
  if (magic !== REQUEST_MAGIC) return new ReplicaProtocolError('BAD_MAGIC', `bad request magic 0x${magic.toString(16)}`);
  const version = body.readUInt8(4);
  if (version !== PROTOCOL_VERSION) return new ReplicaProtocolError('BAD_VERSION', `unsupported protocol version ${version}`, { version });
  const opcode = body.readUInt8(5);
  if (!isOpcode(opcode)) return new ReplicaProtocolError('BAD_OPCODE', `unknown opcode ${opcode}`, { opcode });
  const flags = body.readUInt16BE(6);
  if ((flags & ~KNOWN_FLAGS) !== 0) return new ReplicaProtocolError('BAD_FLAGS', `unknown flags 0x${flags.toString(16)}`, { flags });
  const numbers: number[] = [];
  for (const [field, at] of [['requestId', 8], ['generation', 16], ['offset', 24], ['lengthBytes', 32]] as const) {
    const value = readU64(body, at, field);
    if (value instanceof ReplicaProtocolError) return value;
    numbers.push(value);
  }
  const [requestId = 0, generation = 0, offset = 0, lengthBytes = 0] = numbers;
  const volumeIdLength = body.readUInt8(40);
  const payloadStart = REQUEST_HEADER_BYTES + volumeIdLength;
  if (body.length < payloadStart) return new ReplicaProtocolError('TRUNCATED', 'request ends inside its volume id');
  const volumeId = decodeVolumeId(body.subarray(REQUEST_HEADER_BYTES, payloadStart), opcode);
  if (volumeId instanceof ReplicaProtocolError) return volumeId;
  const payload = body.subarray(payloadStart);
  const shapeError = checkPayloadShape(opcode, lengthBytes, payload);
  if (shapeError !== undefined) return shapeError;
  return { opcode, flags, requestId, generation, offset, lengthBytes, volumeId, payload };
}

function decodeVolumeId(bytes: Buffer, opcode: Opcode): string | ReplicaProtocolError {
  if (VOLUMELESS_OPS.has(opcode)) {
    return bytes.length === 0 ? '' : new ReplicaProtocolError('BAD_STRING', `opcode ${opcode} must not name a volume`);
  }
  if (bytes.length === 0) return new ReplicaProtocolError('BAD_STRING', `opcode ${opcode} needs a volume id`);
  let text: string;
  try {
    text = utf8Decoder.decode(bytes);
  } catch {
    // The fatal decoder throws on invalid UTF-8; that is the refusal itself, nothing to log.
    return new ReplicaProtocolError('BAD_STRING', 'volume id is not valid UTF-8');
  }
  if (text.includes('\0')) return new ReplicaProtocolError('BAD_STRING', 'volume id contains NUL');
  return text;
}

function checkPayloadShape(opcode: Opcode, lengthBytes: number, payload: Buffer): ReplicaProtocolError | undefined {
  const payloadBytes = payload.length;
  if (opcode === Opcode.WRITE && payloadBytes !== lengthBytes) {
    return new ReplicaProtocolError('BAD_LENGTH', `WRITE of ${lengthBytes} bytes carries ${payloadBytes} bytes of data`);
  }
  if (opcode === Opcode.GET_DIRTY && payloadBytes !== DIRTY_MARKER_BYTES) {
    return new ReplicaProtocolError('BAD_LENGTH', `GET_DIRTY needs an ${DIRTY_MARKER_BYTES}-byte marker, got ${payloadBytes}`);
  }
  if (SNAPSHOT_OPS.has(opcode)) return checkSnapshotPayload(opcode, payload);
  if (!PAYLOAD_OPS.has(opcode) && payloadBytes !== 0) {
    return new ReplicaProtocolError('BAD_LENGTH', `opcode ${opcode} carries an unexpected ${payloadBytes}-byte payload`);
  }
  return undefined;
}

export function encodeReply(reply: ReplicaReply): Buffer {
  const frame = Buffer.allocUnsafe(replyFrameBytes(reply.payload.length, true));
  encodeReplyInto(reply, frame, 0, true);
  return frame;
}

/** Bytes encodeReplyInto writes for a reply with `payloadBytes` of payload. */
export function replyFrameBytes(payloadBytes: number, inlinePayload: boolean): number {
  return FRAME_LENGTH_BYTES + REPLY_HEADER_BYTES + (inlinePayload ? payloadBytes : 0);
}

/** Encode a reply frame into `target` at `at` (replyFrameBytes of room); see encodeRequestInto. */
export function encodeReplyInto(reply: ReplicaReply, target: Buffer, at: number, inlinePayload: boolean): void {
  assertU64(reply.requestId, 'requestId');
  const payload = reply.payload;
  target.writeUInt32BE(REPLY_HEADER_BYTES + payload.length, at);
  target.writeUInt32BE(REPLY_MAGIC, at + 4);
  writeU64(target, reply.requestId, at + 8);
  target.writeUInt8(reply.status, at + 16);
  if (inlinePayload) payload.copy(target, at + FRAME_LENGTH_BYTES + REPLY_HEADER_BYTES);
}

export function decodeReply(body: Buffer): ReplicaReply | ReplicaProtocolError {
  if (body.length < REPLY_HEADER_BYTES) {
    return new ReplicaProtocolError('TRUNCATED', `reply of ${body.length} bytes is shorter than its ${REPLY_HEADER_BYTES}-byte header`);
  }
  const magic = body.readUInt32BE(0);
  if (magic !== REPLY_MAGIC) return new ReplicaProtocolError('BAD_MAGIC', `bad reply magic 0x${magic.toString(16)}`);
  const requestId = readU64(body, 4, 'requestId');
  if (requestId instanceof ReplicaProtocolError) return requestId;
  const status = body.readUInt8(12);
  if (!isStatus(status)) return new ReplicaProtocolError('BAD_STATUS', `unknown reply status ${status}`, { status });
  return { requestId, status, payload: body.subarray(REPLY_HEADER_BYTES) };
}

/** UTF-8 text of an error reply's payload (lossy: only for messages). */
export function decodeErrorMessage(payload: Buffer): string {
  return payload.toString('utf8');
}

/**
 * Reassembles frame bodies from arbitrary chunks (pg-protocol habit: never
 * sees a socket). Holds at most one partial frame, so memory per connection
 * is bounded by `maxFrameBytes`.
 */
export class FrameSplitter {
  readonly #maxFrameBytes: number;
  #chunks: Buffer[] = [];
  #bufferedBytes = 0;
  /** Total bytes (prefix + body) of the frame at the head; 0 while unknown. */
  #neededBytes = 0;
  #failed: ReplicaProtocolError | undefined;

  constructor(maxFrameBytes: number) {
    this.#maxFrameBytes = maxFrameBytes;
  }

  /** Frame bodies completed by `chunk`, or the error that ends the stream (sticky). */
  push(chunk: Buffer): Buffer[] | ReplicaProtocolError {
    if (this.#failed !== undefined) return this.#failed;
    if (chunk.length === 0) return [];
    this.#chunks.push(chunk);
    this.#bufferedBytes += chunk.length;
    // A large frame in many chunks: concatenate once, when all of it is here.
    if (this.#neededBytes > this.#bufferedBytes) return [];
    let buffer = this.#chunks.length === 1 ? chunk : Buffer.concat(this.#chunks, this.#bufferedBytes);
    const bodies: Buffer[] = [];
    while (buffer.length >= FRAME_LENGTH_BYTES) {
      const bodyBytes = buffer.readUInt32BE(0);
      if (bodyBytes > this.#maxFrameBytes) {
        this.#failed = new ReplicaProtocolError('FRAME_TOO_LARGE', `frame of ${bodyBytes} bytes is over the limit of ${this.#maxFrameBytes}`, {
          sizeBytes: bodyBytes,
          maxFrameBytes: this.#maxFrameBytes,
        });
        this.#chunks = [];
        this.#bufferedBytes = 0;
        return this.#failed;
      }
      if (buffer.length < FRAME_LENGTH_BYTES + bodyBytes) break;
      bodies.push(buffer.subarray(FRAME_LENGTH_BYTES, FRAME_LENGTH_BYTES + bodyBytes));
      buffer = buffer.subarray(FRAME_LENGTH_BYTES + bodyBytes);
    }
    this.#chunks = buffer.length > 0 ? [buffer] : [];
    this.#bufferedBytes = buffer.length;
    this.#neededBytes = buffer.length >= FRAME_LENGTH_BYTES ? FRAME_LENGTH_BYTES + buffer.readUInt32BE(0) : 0;
    return bodies;
  }

  get bufferedBytes(): number {
    return this.#bufferedBytes;
  }
}
