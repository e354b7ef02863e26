import type { Server, Socket } from 'node:net';
import type { Logger } from 'pino';
import { PlinthError, toError } from '../../common/plinth-error.js';
import type { HostPort } from '../config/config-types.js';
import { plainPeerSockets, type PeerSockets } from '../tls/peer-sockets.js';

/**
 * The one peer port (ARCHITECTURE contract `--peer`): accepts every
 * node-to-node connection and routes it by its first bytes.
 *
 *   bytes 0..3 = "PJN1"          → cluster join (join-protocol.ts)
 *   bytes 0..3 = "PRPC"          → forwarded proposals/reads (peer-rpc.ts)
 *   bytes 4..7 = "PLRQ"          → replica server (length-prefixed frames, magic PLRQ)
 *   anything else                → the Raft transport (length-prefixed HMAC handshake)
 *
 * A route sees the socket with the peeked bytes pushed back (socket.unshift),
 * so its own parser starts at byte 0. A connection that sends fewer than
 * PEEK_BYTES before `peekTimeoutMs` is dropped.
 *
 * With TLS (docs/security.md "Peer traffic") the server comes from the
 * injected PeerSockets: mutual TLS, and a connection without a certificate of
 * the cluster CA reaches only routes added with `{ unauthenticated: true }`
 * (join, which checks the join token itself); elsewhere it is dropped and the
 * log says why ("peer presented no certificate").
 */
export const PEEK_BYTES = 8;

export type PeerRouteMatcher = (head: Buffer) => boolean;
export type PeerRouteHandler = (socket: Socket) => void;

export interface PeerListenerOptions {
  readonly listen: HostPort;
  readonly peekTimeoutMs?: number;
  readonly maxConnections?: number;
}

export function magicAt(offset: number, magic: string): PeerRouteMatcher {
  const bytes = Buffer.from(magic, 'latin1');
  return (head) => head.subarray(offset, offset + bytes.length).equals(bytes);
}

export const JOIN_MAGIC = 'PJN1';
export const RPC_MAGIC = 'PRPC';
/** The replica protocol's request magic, right after the 4-byte frame length. */
export const isReplicaConnection = magicAt(4, 'PLRQ');

export class PeerListener {
  readonly #options: PeerListenerOptions;
  readonly #logger: Logger;
  readonly #server: Server;
  readonly #sockets: PeerSockets;
  readonly #routes: Array<{ readonly name: string; readonly matches: PeerRouteMatcher; readonly handler: PeerRouteHandler; readonly unauthenticated: boolean }> = [];
  #fallback: PeerRouteHandler | null = null;
  readonly #pending = new Set<Socket>();

  constructor(options: PeerListenerOptions, modules: { readonly logger: Logger; readonly sockets?: PeerSockets }) {
    this.#options = options;
    this.#logger = modules.logger;
    this.#sockets = modules.sockets ?? plainPeerSockets();
    this.#server = this.#sockets.createServer((socket) => this.#onConnection(socket));
    this.#server.maxConnections = options.maxConnections ?? 1024;
  }

  /** Add a route; the first matching route wins. Only `unauthenticated` routes see TLS peers without a cluster certificate. */
  route(name: string, matches: PeerRouteMatcher, handler: PeerRouteHandler, options: { readonly unauthenticated?: boolean } = {}): void {
    this.#routes.push({ name, matches, handler, unauthenticated: options.unauthenticated === true });
  }

  /** Where connections no route claims go (the Raft transport). */
  fallback(handler: PeerRouteHandler): void {
    this.#fallback = handler;
  }

  async listen(): Promise<HostPort> {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => {
        const code = 'code' in err && typeof err.code === 'string' ? err.code : err.message;
        reject(new PlinthError('IO_ERROR', `peer port cannot listen on ${this.#options.listen.host}:${this.#options.listen.port}: ${code}`, {
          ...this.#options.listen,
        }, { cause: err }));
      };
      this.#server.once('error', onError);
      this.#server.listen(this.#options.listen.port, this.#options.listen.host, () => {
        this.#server.off('error', onError);
        resolve();
      });
    });
    return this.address();
  }

  address(): HostPort {
    const bound = this.#server.address();
    if (bound === null || typeof bound === 'string') throw new PlinthError('INTERNAL', 'peer port is not listening');
    return { host: this.#options.listen.host, port: bound.port };
  }

  async close(): Promise<void> {
    for (const socket of this.#pending) socket.destroy();
    if (!this.#server.listening) return;
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #onConnection(socket: Socket): void {
    this.#pending.add(socket);
    let head = Buffer.alloc(0);
    const timer = setTimeout(() => {
      this.#logger.debug({ remote: socket.remoteAddress }, 'peer port: connection sent too little to route; dropped');
      socket.destroy();
    }, this.#options.peekTimeoutMs ?? 5000);
    const done = (): void => {
      clearTimeout(timer);
      this.#pending.delete(socket);
      socket.off('data', onData);
    };
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      if (head.length < PEEK_BYTES) return;
      done();
      socket.pause();
      socket.unshift(head);
      this.#dispatch(socket, head);
    };
    socket.on('data', onData);
    socket.once('close', done);
    socket.on('error', (err) => this.#logger.debug({ err }, 'peer port: connection error'));
  }

  #dispatch(socket: Socket, head: Buffer): void {
    const route = this.#routes.find((candidate) => candidate.matches(head));
    const handler = route?.handler ?? this.#fallback;
    const refusal = route?.unauthenticated === true ? null : this.#sockets.authorizationFailure(socket);
    if (refusal !== null) {
      this.#logger.warn({ remote: socket.remoteAddress, route: route?.name ?? 'raft', reason: refusal }, `peer port: connection refused: ${refusal}`);
      socket.destroy();
      return;
    }
    if (handler === null) {
      this.#logger.warn({ remote: socket.remoteAddress }, 'peer port: no handler for connection; dropped');
      socket.destroy();
      return;
    }
    try {
      handler(socket);
      socket.resume();
    } catch (err) {
      this.#logger.error({ err: toError(err), route: route?.name ?? 'fallback' }, 'peer port: route handler failed');
      socket.destroy();
    }
  }
}
