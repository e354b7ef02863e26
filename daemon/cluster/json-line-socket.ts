import { connect as netConnect, type Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { PlinthError, toError } from '../../common/plinth-error.js';
import type { HostPort } from '../config/config-types.js';

/**
 * Newline-delimited JSON over a peer-port connection, for the small control
 * exchanges (join, forwarded proposals): one JSON value per line, each line
 * bounded by `maxLineBytes` (a limit on everything), every wait bounded by a
 * timeout. The 4-byte route magic precedes the first line.
 */
export const DEFAULT_MAX_LINE_BYTES = 256 * 1024;

export class JsonLineSocket {
  readonly #socket: Socket;
  readonly #maxLineBytes: number;
  #buffer = '';
  #lines: string[] = [];
  #waiter: { resolve: (line: string) => void; reject: (err: Error) => void } | null = null;
  #failure: Error | null = null;

  constructor(socket: Socket, options: { readonly maxLineBytes?: number; readonly skipBytes?: number } = {}) {
    this.#socket = socket;
    this.#maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    let skip = options.skipBytes ?? 0;
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      let text = chunk;
      if (skip > 0) {
        const skipped = Math.min(skip, text.length);
        text = text.slice(skipped);
        skip -= skipped;
      }
      this.#onText(text);
    });
    socket.on('error', (err) => this.#fail(err));
    socket.on('close', () => this.#fail(new PlinthError('IO_ERROR', 'peer closed the connection')));
  }

  /** Write one JSON value as a line. */
  send(value: unknown, prefix = ''): void {
    this.#socket.write(prefix + Buffer.from(JSON.stringify(value) + '\n', 'utf8').toString('latin1'), 'latin1');
  }

  /** The next line, parsed; rejects on close, oversize or timeout. */
  async receive(timeoutMs: number): Promise<unknown> {
    const line = await this.#nextLine(timeoutMs);
    try {
      return JSON.parse(Buffer.from(line, 'latin1').toString('utf8')) as unknown;
    } catch (err) {
      throw new PlinthError('PROTOCOL_ERROR', `peer sent a line that is not JSON: ${toError(err).message}`, { reason: 'bad-json' });
    }
  }

  close(): void {
    this.#socket.end();
    this.#socket.destroySoon();
  }

  destroy(): void {
    this.#socket.destroy();
  }

  #nextLine(timeoutMs: number): Promise<string> {
    const ready = this.#lines.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    if (this.#failure !== null) return Promise.reject(this.#failure);
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiter = null;
        reject(new PlinthError('TIMEOUT', `no answer from the peer within ${timeoutMs} ms`, { timeoutMs }));
        this.#socket.destroy();
      }, timeoutMs);
      this.#waiter = {
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
    });
  }

  #onText(text: string): void {
    this.#buffer += text;
    let newline = this.#buffer.indexOf('\n');
    while (newline >= 0) {
      this.#deliver(this.#buffer.slice(0, newline));
      this.#buffer = this.#buffer.slice(newline + 1);
      newline = this.#buffer.indexOf('\n');
    }
    if (this.#buffer.length > this.#maxLineBytes) {
      this.#fail(new PlinthError('PROTOCOL_ERROR', `peer line exceeds ${this.#maxLineBytes} bytes`, { reason: 'line-too-long' }));
      this.#socket.destroy();
    }
  }

  #deliver(line: string): void {
    const waiter = this.#waiter;
    if (waiter !== null) {
      this.#waiter = null;
      waiter.resolve(line);
    } else if (this.#lines.length < 16) {
      this.#lines.push(line);
    } else {
      this.#fail(new PlinthError('PROTOCOL_ERROR', 'peer sent too many unanswered lines', { reason: 'flood' }));
      this.#socket.destroy();
    }
  }

  #fail(err: Error): void {
    if (this.#failure !== null) return;
    this.#failure = err;
    const waiter = this.#waiter;
    this.#waiter = null;
    waiter?.reject(err);
  }
}

/** How to open a peer-port connection: plain TCP by default, mutual TLS when injected (daemon/tls/peer-sockets.ts). */
export type DialSocket = (host: string, port: number) => Socket;

const plainDial: DialSocket = (host, port) => netConnect({ host, port });

/** Dial a member's peer port; rejects with IO_ERROR or TIMEOUT. With TLS it resolves after the handshake. */
export function dialPeer(address: HostPort, timeoutMs: number, dial: DialSocket = plainDial): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    const socket = dial(address.host, address.port);
    // A TLS socket is usable (and verified) at secureConnect; a plain one at connect.
    const readyEvent = socket instanceof TLSSocket ? 'secureConnect' : 'connect';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new PlinthError('TIMEOUT', `connecting to ${address.host}:${address.port} timed out after ${timeoutMs} ms`, { ...address }));
    }, timeoutMs);
    socket.once(readyEvent, () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(new PlinthError('IO_ERROR', `cannot reach peer ${address.host}:${address.port}: ${toError(err).message}`, { ...address }, { cause: err }));
    });
  });
}

export function errorToJson(err: unknown): { code: string; message: string; details: Readonly<Record<string, unknown>> } {
  if (err instanceof PlinthError) return { code: err.code, message: err.message, details: err.details };
  return { code: 'INTERNAL', message: toError(err).message, details: {} };
}

export function errorFromJson(value: unknown): PlinthError {
  if (typeof value === 'object' && value !== null) {
    const record = value as Record<string, unknown>;
    const code = typeof record['code'] === 'string' ? record['code'] : 'INTERNAL';
    const message = typeof record['message'] === 'string' ? record['message'] : 'peer reported an error';
    const details = typeof record['details'] === 'object' && record['details'] !== null ? (record['details'] as Record<string, unknown>) : {};
    // The code travels as a string between nodes of the same build.
    return new PlinthError(code as PlinthError['code'], message, details);
  }
  return new PlinthError('PROTOCOL_ERROR', 'peer sent a malformed error', { reason: 'bad-error' });
}
