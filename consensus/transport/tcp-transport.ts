/**
 * The Raft TCP transport: one listening socket for inbound links and one
 * outbound link per peer (PeerSender). Every link starts with the HMAC
 * handshake; an inbound link is bound to the peer id it proved, so a message's
 * sender is taken from the authenticated link, never from the message itself.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { PlinthError, isPlinthError, toError } from '../../common/plinth-error.js';
import type { BackoffOptions } from './backoff.js';
import { FaultHook } from './fault-hook.js';
import { FramedSocket } from './framed-socket.js';
import { acceptHandshake, type HandshakeModules } from './handshake-session.js';
import { LINK_ACK, LinkAcker } from './link-liveness.js';
import { PeerSender } from './peer-sender.js';
import type { InboundHandler, MessageCodec, PeerAddress, PeerStats, Transport } from './transport-types.js';

export interface TcpTransportOptions {
  readonly nodeId: string;
  /** Where to listen; port 0 picks a free one (see `address()`). */
  readonly listen: PeerAddress;
  readonly secret: Buffer;
  readonly maxFrameBytes: number;
  readonly maxQueuedMessagesPerPeer: number;
  readonly maxInboundConnections: number;
  readonly handshakeTimeoutMs: number;
  readonly backoff: BackoffOptions;
  /** A listener acks received frames within this (link-liveness.ts). */
  readonly ackIntervalMs: number;
  /** A dialer drops a link with writes unacknowledged this long, and redials. */
  readonly linkDeadAfterMs: number;
}

export interface TcpTransportModules<M> {
  readonly logger: Logger;
  readonly codec: MessageCodec<M>;
  /** Jitter and fault-drop randomness, in [0, 1). */
  readonly random: () => number;
  readonly randomBytes?: (size: number) => Buffer;
  readonly setTimeout?: (callback: () => void, delayMs: number) => NodeJS.Timeout;
  readonly clearTimeout?: (timer: NodeJS.Timeout) => void;
  readonly now?: () => number;
  /**
   * How links to peers are dialed; plain TCP by default. The daemon injects
   * mutual TLS here in a TLS cluster (daemon/tls/peer-sockets.ts): the HMAC
   * handshake then runs inside the TLS session, as defence in depth.
   */
  readonly connect?: (host: string, port: number) => Socket;
}

export const DEFAULT_TRANSPORT_LIMITS = {
  maxFrameBytes: 8 * 1024 * 1024,
  maxQueuedMessagesPerPeer: 4096,
  maxInboundConnections: 64,
  handshakeTimeoutMs: 2000,
  backoff: { baseDelayMs: 50, maxDelayMs: 2000 },
  ackIntervalMs: 100,
  // Well above an event-loop stall on a loaded node, well below TCP's minutes of retransmission backoff.
  linkDeadAfterMs: 3000,
} as const;

export class TcpTransport<M> implements Transport<M> {
  readonly faults: FaultHook;
  readonly #options: TcpTransportOptions;
  readonly #modules: TcpTransportModules<M>;
  readonly #handshakeModules: HandshakeModules;
  readonly #senders = new Map<string, PeerSender<M>>();
  readonly #faultDrops = new Map<string, number>();
  readonly #inbound = new Set<Socket>();
  readonly #server: Server;
  #handler: InboundHandler<M> = () => undefined;
  #closed = false;
  readonly #now: () => number;

  constructor(options: TcpTransportOptions, modules: TcpTransportModules<M>) {
    this.#options = options;
    this.#modules = modules;
    this.#handshakeModules = {
      randomBytes: modules.randomBytes ?? randomBytes,
      setTimeout: modules.setTimeout ?? ((cb, ms) => setTimeout(cb, ms)),
      clearTimeout: modules.clearTimeout ?? ((timer) => clearTimeout(timer)),
    };
    this.#now = modules.now ?? Date.now;
    this.faults = new FaultHook(modules.random);
    this.#server = createServer((socket) => this.#onInbound(socket));
  }

  /** Start listening; resolves with the bound address. */
  async listen(): Promise<PeerAddress> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#options.listen.port, this.#options.listen.host, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    return this.address();
  }

  address(): PeerAddress {
    const bound = this.#server.address();
    if (bound === null || typeof bound === 'string') throw new PlinthError('INTERNAL', 'raft transport is not listening');
    return { host: bound.address, port: bound.port };
  }

  onMessage(handler: InboundHandler<M>): void {
    this.#handler = handler;
  }

  setPeer(id: string, address: PeerAddress): void {
    const existing = this.#senders.get(id);
    if (existing !== undefined && existing.address.host === address.host && existing.address.port === address.port) return;
    existing?.close();
    this.#senders.set(
      id,
      new PeerSender<M>(
        {
          nodeId: this.#options.nodeId,
          peerId: id,
          address,
          secret: this.#options.secret,
          maxQueuedMessages: this.#options.maxQueuedMessagesPerPeer,
          maxFrameBytes: this.#options.maxFrameBytes,
          handshakeTimeoutMs: this.#options.handshakeTimeoutMs,
          backoff: this.#options.backoff,
          linkDeadAfterMs: this.#options.linkDeadAfterMs,
        },
        {
          ...this.#handshakeModules,
          logger: this.#modules.logger,
          codec: this.#modules.codec,
          random: this.#modules.random,
          now: this.#now,
          ...(this.#modules.connect === undefined ? {} : { connect: this.#modules.connect }),
        },
      ),
    );
  }

  removePeer(id: string): void {
    this.#senders.get(id)?.close();
    this.#senders.delete(id);
  }

  peers(): string[] {
    return [...this.#senders.keys()];
  }

  send(to: string, message: M): void {
    if (this.#closed) return;
    const sender = this.#senders.get(to);
    if (sender === undefined) {
      this.#modules.logger.debug({ to }, 'raft transport: message to unknown peer dropped');
      return;
    }
    if (this.faults.shouldDropOutbound(to)) {
      this.#faultDrops.set(to, (this.#faultDrops.get(to) ?? 0) + 1);
      return;
    }
    const delayMs = this.faults.delayMs;
    if (delayMs > 0) this.#handshakeModules.setTimeout(() => sender.enqueue(message), delayMs);
    else sender.enqueue(message);
  }

  isConnected(id: string): boolean {
    return this.#senders.get(id)?.connected ?? false;
  }

  stats(): Map<string, PeerStats> {
    const result = new Map<string, PeerStats>();
    for (const [id, sender] of this.#senders) result.set(id, sender.stats(this.#faultDrops.get(id) ?? 0));
    return result;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const sender of this.#senders.values()) sender.close();
    for (const socket of this.#inbound) socket.destroy();
    // Never listening (sockets fed through acceptSocket): nothing to close.
    if (!this.#server.listening) return;
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  /**
   * Serve an inbound connection accepted elsewhere (the daemon's shared peer
   * port demultiplexes Raft, replication and join traffic); use instead of
   * listen(). Same limits and handshake as a connection accepted here.
   */
  acceptSocket(socket: Socket): void {
    this.#onInbound(socket);
  }

  #onInbound(socket: Socket): void {
    if (this.#closed || this.#inbound.size >= this.#options.maxInboundConnections) {
      this.#modules.logger.warn({ remote: socket.remoteAddress }, 'raft transport: inbound connection refused (limit or closing)');
      socket.destroy();
      return;
    }
    this.#inbound.add(socket);
    socket.on('close', () => this.#inbound.delete(socket));
    socket.on('error', (err) => this.#modules.logger.debug({ err }, 'raft transport: inbound connection error'));
    const framed = new FramedSocket(socket, this.#options.maxFrameBytes, this.#modules.logger, () => undefined);
    const acker = new LinkAcker(this.#options.ackIntervalMs, { ...this.#handshakeModules, now: this.#now }, () => {
      if (!framed.closed) framed.write(LINK_ACK);
    });
    socket.on('close', () => acker.close());
    const dataHandler = (peerId: string) => (frame: Buffer) => {
      acker.noteFrame();
      this.#onFrame(peerId, frame);
    };
    acceptHandshake(framed, { ...this.#options, timeoutMs: this.#options.handshakeTimeoutMs }, this.#handshakeModules, dataHandler)
      .then((peerId) => this.#modules.logger.debug({ peer: peerId }, 'raft transport: inbound link authenticated'))
      .catch((err: unknown) => {
        if (!isPlinthError(err, 'UNAUTHORIZED')) this.#modules.logger.error({ err: toError(err) }, 'raft transport: handshake crashed');
      });
  }

  /** Throwing here (BAD_FRAME from the codec) drops only this connection, via FramedSocket. */
  #onFrame(from: string, frame: Buffer): void {
    const message = this.#modules.codec.decode(frame);
    if (this.faults.shouldDropInbound(from)) return;
    this.#handler(from, message);
  }
}
