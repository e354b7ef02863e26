/**
 * The outbound half of one peer link: a bounded queue, one TCP connection
 * dialed on demand, the HMAC handshake, and reconnect with exponential backoff
 * plus jitter. When the queue is full the OLDEST message is dropped: Raft
 * retransmits from the leader's progress state (§5.3), and a fresh message is
 * more useful than a stale heartbeat. Drops are counted for metrics.
 */
import { connect as netConnect, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { isPlinthError, toError } from '../../common/plinth-error.js';
import { reconnectDelayMs, type BackoffOptions } from './backoff.js';
import { FramedSocket } from './framed-socket.js';
import { dialHandshake, type HandshakeModules } from './handshake-session.js';
import { LinkWatchdog } from './link-liveness.js';
import type { MessageCodec, PeerAddress, PeerStats } from './transport-types.js';

export interface PeerSenderOptions {
  readonly nodeId: string;
  readonly peerId: string;
  readonly address: PeerAddress;
  readonly secret: Buffer;
  readonly maxQueuedMessages: number;
  readonly maxFrameBytes: number;
  readonly handshakeTimeoutMs: number;
  readonly backoff: BackoffOptions;
  /** Drop the link when nothing was acknowledged this long after a write (link-liveness.ts). */
  readonly linkDeadAfterMs: number;
}

export interface PeerSenderModules<M> extends HandshakeModules {
  readonly logger: Logger;
  readonly codec: MessageCodec<M>;
  readonly random: () => number;
  readonly now: () => number;
  /** Dials the peer; plain TCP by default (TcpTransportModules.connect). */
  readonly connect?: (host: string, port: number) => Socket;
}

export class PeerSender<M> {
  readonly #options: PeerSenderOptions;
  readonly #modules: PeerSenderModules<M>;
  readonly #queue: M[] = [];
  #queueHead = 0;
  #framed: FramedSocket | undefined;
  #watchdog: LinkWatchdog | undefined;
  #dialTimer: NodeJS.Timeout | undefined;
  #state: 'idle' | 'connecting' | 'connected' | 'backoff' | 'closed' = 'idle';
  #failures = 0;
  #retryTimer: NodeJS.Timeout | undefined;
  #sent = 0;
  #droppedQueueFull = 0;
  #connectAttempts = 0;

  constructor(options: PeerSenderOptions, modules: PeerSenderModules<M>) {
    this.#options = options;
    this.#modules = modules;
  }

  get address(): PeerAddress {
    return this.#options.address;
  }

  enqueue(message: M): void {
    if (this.#state === 'closed') return;
    if (this.#queueLength() >= this.#options.maxQueuedMessages) {
      this.#queueHead++;
      this.#droppedQueueFull++;
    }
    this.#queue.push(message);
    if (this.#state === 'idle') this.#dial();
    else if (this.#state === 'connected') this.#flush();
  }

  stats(droppedByFault: number): PeerStats {
    return {
      queued: this.#queueLength(),
      sent: this.#sent,
      droppedQueueFull: this.#droppedQueueFull,
      droppedByFault,
      connected: this.#state === 'connected',
      connectAttempts: this.#connectAttempts,
    };
  }

  get connected(): boolean {
    return this.#state === 'connected';
  }

  close(): void {
    this.#state = 'closed';
    if (this.#retryTimer !== undefined) this.#modules.clearTimeout(this.#retryTimer);
    this.#stopLinkTimers();
    this.#framed?.socket.destroy();
    this.#queue.length = 0;
    this.#queueHead = 0;
  }

  #queueLength(): number {
    return this.#queue.length - this.#queueHead;
  }

  #dial(): void {
    this.#state = 'connecting';
    this.#connectAttempts++;
    const { host, port } = this.#options.address;
    const socket = this.#modules.connect?.(host, port) ?? netConnect({ host, port });
    const framed = new FramedSocket(socket, this.#options.maxFrameBytes, this.#modules.logger, () => {
      throw new Error('unexpected frame before handshake');
    });
    this.#framed = framed;
    socket.on('error', (err) => {
      this.#modules.logger.debug({ err, peer: this.#options.peerId }, 'raft transport: connection error');
    });
    socket.on('close', () => this.#onClose(framed));
    // A SYN into a partition is retried by the kernel for minutes: bound connect + handshake.
    this.#dialTimer = this.#modules.setTimeout(() => {
      this.#dialTimer = undefined;
      if (this.#state === 'connecting' && this.#framed === framed) framed.fail(`no connection to ${host}:${port} within ${this.#options.handshakeTimeoutMs} ms`);
    }, this.#options.handshakeTimeoutMs);
    socket.once('connect', () => {
      dialHandshake(framed, { ...this.#options, expectedPeerId: this.#options.peerId, timeoutMs: this.#options.handshakeTimeoutMs }, this.#modules)
        .then(() => this.#onAuthenticated(framed))
        .catch((err: unknown) => {
          // The handshake already closed the socket; #onClose schedules the retry.
          if (!isPlinthError(err, 'UNAUTHORIZED')) this.#modules.logger.error({ err: toError(err) }, 'raft transport: handshake crashed');
        });
    });
    socket.on('drain', () => this.#flush());
  }

  #onAuthenticated(framed: FramedSocket): void {
    if (this.#state !== 'connecting' || this.#framed !== framed) return;
    this.#stopLinkTimers();
    const watchdog = new LinkWatchdog(this.#options.linkDeadAfterMs, this.#modules, (silentMs) =>
      framed.fail(`peer ${this.#options.peerId} acknowledged nothing for ${silentMs} ms; redialing`),
    );
    this.#watchdog = watchdog;
    // The only frames a listener sends back are empty acks (link-liveness.ts).
    framed.setHandler((frame) => (frame.length === 0 ? watchdog.noteAck() : framed.fail('peer sent data on an outbound-only link')));
    this.#state = 'connected';
    this.#failures = 0;
    this.#modules.logger.debug({ peer: this.#options.peerId }, 'raft transport: connected');
    this.#flush();
  }

  #onClose(framed: FramedSocket): void {
    if (this.#framed !== framed || this.#state === 'closed') return;
    this.#framed = undefined;
    this.#stopLinkTimers();
    const delayMs = reconnectDelayMs(this.#failures, this.#options.backoff, this.#modules.random);
    this.#failures++;
    this.#state = 'backoff';
    this.#retryTimer = this.#modules.setTimeout(() => {
      this.#retryTimer = undefined;
      if (this.#state !== 'backoff') return;
      // Redial only when there is something to say; an idle link costs nothing.
      if (this.#queueLength() > 0) this.#dial();
      else this.#state = 'idle';
    }, delayMs);
  }

  #stopLinkTimers(): void {
    this.#watchdog?.close();
    this.#watchdog = undefined;
    if (this.#dialTimer !== undefined) this.#modules.clearTimeout(this.#dialTimer);
    this.#dialTimer = undefined;
  }

  /** Write queued messages until the socket pushes back (then wait for 'drain'). */
  #flush(): void {
    const framed = this.#framed;
    if (this.#state !== 'connected' || framed === undefined) return;
    while (this.#queueLength() > 0) {
      const message = this.#queue[this.#queueHead] as M;
      this.#queueHead++;
      this.#sent++;
      let payload: Uint8Array;
      try {
        payload = this.#modules.codec.encode(message);
        if (payload.length > this.#options.maxFrameBytes) throw new Error(`message of ${payload.length} bytes exceeds the frame limit`);
      } catch (err) {
        // The Raft core bounds message size below the frame limit; reaching this is a bug upstream.
        this.#modules.logger.error({ err: toError(err), peer: this.#options.peerId }, 'raft transport: cannot encode message, dropped');
        continue;
      }
      this.#watchdog?.noteWrite();
      if (!framed.write(payload)) break;
    }
    if (this.#queueHead > 1024 && this.#queueHead * 2 > this.#queue.length) {
      this.#queue.splice(0, this.#queueHead);
      this.#queueHead = 0;
    }
    if (this.#queueLength() === 0) {
      this.#queue.length = 0;
      this.#queueHead = 0;
    }
  }
}
