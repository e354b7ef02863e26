/**
 * A socket that speaks length-prefixed frames. Any error while decoding or
 * handling a frame destroys this socket only (ARCHITECTURE invariant 7): the
 * transport logs it and keeps serving every other peer.
 */
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { toError } from '../../common/plinth-error.js';
import { encodeFrame, FrameDecoder } from './frame-codec.js';

export type FrameHandler = (frame: Buffer) => void;

export class FramedSocket {
  readonly socket: Socket;
  readonly #decoder: FrameDecoder;
  readonly #maxFrameBytes: number;
  readonly #logger: Logger;
  #handler: FrameHandler;
  #closed = false;

  constructor(socket: Socket, maxFrameBytes: number, logger: Logger, handler: FrameHandler) {
    this.socket = socket;
    this.#maxFrameBytes = maxFrameBytes;
    this.#decoder = new FrameDecoder(maxFrameBytes);
    this.#logger = logger;
    this.#handler = handler;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('close', () => {
      this.#closed = true;
    });
  }

  /** Replace the frame handler, e.g. when the handshake completes. */
  setHandler(handler: FrameHandler): void {
    this.#handler = handler;
  }

  get closed(): boolean {
    return this.#closed || this.socket.destroyed;
  }

  /** Returns false when the socket's buffer is full (wait for 'drain'). */
  write(payload: Uint8Array): boolean {
    return this.socket.write(encodeFrame(payload, this.#maxFrameBytes));
  }

  /** Drop the connection, logging why. */
  fail(reason: string, err?: unknown): void {
    if (this.closed) return;
    this.#closed = true;
    this.#logger.warn(
      { err: err === undefined ? undefined : toError(err), remote: `${this.socket.remoteAddress}:${this.socket.remotePort}` },
      `raft transport: dropping connection: ${reason}`,
    );
    this.socket.destroy();
  }

  #onData(chunk: Buffer): void {
    if (this.closed) return;
    try {
      for (const frame of this.#decoder.push(chunk)) {
        if (this.closed) return;
        this.#handler(frame);
      }
    } catch (err) {
      this.fail('bad frame', err);
    }
  }
}
