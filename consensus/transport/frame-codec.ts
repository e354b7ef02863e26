/**
 * Length-prefixed framing for the Raft peer port: each frame is a 4-byte
 * big-endian payload length followed by the payload. Pure: the decoder never
 * sees a socket, so it can be tested with a stream split at every byte
 * (the pg-protocol habit). A frame longer than `maxFrameBytes` is a protocol
 * error that costs only the connection it arrived on (ARCHITECTURE invariant 7).
 */
import { PlinthError } from '../../common/plinth-error.js';

export const FRAME_HEADER_BYTES = 4;

export function encodeFrame(payload: Uint8Array, maxFrameBytes: number): Buffer {
  if (payload.length > maxFrameBytes) {
    throw new PlinthError('TOO_LARGE', `frame payload of ${payload.length} bytes exceeds the limit of ${maxFrameBytes}`, {
      sizeBytes: payload.length,
      maxFrameBytes,
    });
  }
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  frame.writeUInt32BE(payload.length, 0);
  frame.set(payload, FRAME_HEADER_BYTES);
  return frame;
}

/**
 * Reassembles frames from arbitrary chunks. Buffers at most one frame plus one
 * header, so memory per connection is bounded by `maxFrameBytes`.
 */
export class FrameDecoder {
  readonly #maxFrameBytes: number;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  /** Bytes the frame at the head of `#pending` needs in total; 0 when unknown. */
  #neededBytes = 0;

  constructor(maxFrameBytes: number) {
    this.#maxFrameBytes = maxFrameBytes;
  }

  /** Feed bytes; returns the frames completed by them (possibly none). Throws BAD_FRAME. */
  push(chunk: Buffer): Buffer[] {
    if (chunk.length === 0) return [];
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.length;
    // A large frame arriving in many chunks: wait for all of it before
    // concatenating, so reassembly stays linear in the frame size.
    if (this.#neededBytes > this.#pendingBytes) return [];
    const frames: Buffer[] = [];
    let buffer = this.#pending.length === 1 ? chunk : Buffer.concat(this.#pending, this.#pendingBytes);
    let offset = 0;
    while (buffer.length - offset >= FRAME_HEADER_BYTES) {
      const length = buffer.readUInt32BE(offset);
      if (length > this.#maxFrameBytes) {
        this.#reset();
        throw new PlinthError('BAD_FRAME', `peer announced a frame of ${length} bytes, above the limit of ${this.#maxFrameBytes}`, {
          sizeBytes: length,
          maxFrameBytes: this.#maxFrameBytes,
        });
      }
      if (buffer.length - offset < FRAME_HEADER_BYTES + length) break;
      frames.push(buffer.subarray(offset + FRAME_HEADER_BYTES, offset + FRAME_HEADER_BYTES + length));
      offset += FRAME_HEADER_BYTES + length;
    }
    buffer = buffer.subarray(offset);
    this.#pending = buffer.length > 0 ? [buffer] : [];
    this.#pendingBytes = buffer.length;
    this.#neededBytes = buffer.length >= FRAME_HEADER_BYTES ? FRAME_HEADER_BYTES + buffer.readUInt32BE(0) : 0;
    return frames;
  }

  /** Bytes received but not yet part of a complete frame. */
  get bufferedBytes(): number {
    return this.#pendingBytes;
  }

  #reset(): void {
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#neededBytes = 0;
  }
}
