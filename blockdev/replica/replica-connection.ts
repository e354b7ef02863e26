import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { toError } from '../../common/plinth-error.js';
import { decodeRequest, encodeReply, encodeReplyInto, FrameSplitter, INLINE_PAYLOAD_MAX_BYTES, replyFrameBytes } from './replica-codec.js';
import { OutgoingFrames } from '../outgoing-frames.js';
import { acceptorStep } from './replica-handshake.js';
import { decodeHelloGreeting, encodeHelloChallenge, PROOF_BYTES } from './replica-payloads.js';
import { Opcode, type ReplicaRequest, ReplicaProtocolError, RequestFlag, Status } from './replica-protocol.js';
import type { ReplicaService } from './replica-service.js';
import { errorMessagePayload, statusOfError } from './replica-status.js';

/**
 * One accepted peer connection: HELLO first (the cluster-secret challenge),
 * then pipelined requests served concurrently with replies in completion
 * order. Bounded: at most `maxInFlightRequests` / `maxInFlightBytes` being
 * served; past that, reading pauses (TCP backpressure to the owner). A bad
 * frame or a failed handshake ends this connection only (invariant 7).
 *
 * Replies finishing in the same event-loop turn are encoded into one buffer
 * and leave in one write (outgoing-frames.ts); large READ payloads are
 * written as their own chunk.
 *
 * A handler over an accepted socket, so the daemon can later hand it sockets
 * from a port it shares with Raft.
 */

export interface ReplicaConnectionLimits {
  readonly maxFrameBytes: number;
  readonly maxInFlightRequests: number;
  readonly maxInFlightBytes: number;
  readonly handshakeTimeoutMs: number;
}

export interface ReplicaConnectionOptions {
  readonly connectionId: string;
  readonly nodeId: string;
  readonly secret: Buffer;
  readonly limits: ReplicaConnectionLimits;
}

export interface ReplicaConnectionModules {
  readonly socket: Socket;
  readonly service: ReplicaService;
  readonly logger: Logger;
  readonly randomBytes: (size: number) => Buffer;
}

/** The OK answer of a write carries nothing; never written into, so one instance serves all. */
const EMPTY_PAYLOAD = Buffer.alloc(0);

type Phase = { readonly name: 'greeting' } | { readonly name: 'proof'; readonly verify: (proof: Buffer) => boolean; readonly peerId: string } | { readonly name: 'ready' };

export class ReplicaConnection {
  readonly connectionId: string;
  /** Settles once the socket closed and every request finished. */
  readonly finished: Promise<void>;
  readonly #options: ReplicaConnectionOptions;
  readonly #modules: ReplicaConnectionModules;
  readonly #logger: Logger;
  readonly #splitter: FrameSplitter;
  readonly #queue: Buffer[] = [];
  readonly #opened = new Set<string>();
  readonly #running = new Set<Promise<void>>();
  #phase: Phase = { name: 'greeting' };
  #inFlightBytes = 0;
  #closed = false;
  readonly #outgoing: OutgoingFrames;
  #handshakeTimer: NodeJS.Timeout | undefined;

  constructor(options: ReplicaConnectionOptions, modules: ReplicaConnectionModules) {
    this.connectionId = options.connectionId;
    this.#options = options;
    this.#modules = modules;
    this.#logger = modules.logger.child({ connectionId: options.connectionId });
    this.#splitter = new FrameSplitter(options.limits.maxFrameBytes);
    const socket = modules.socket;
    this.#outgoing = new OutgoingFrames(socket);
    socket.setNoDelay(true);
    this.finished = new Promise<void>((resolve) => {
      socket.once('close', () => {
        this.#closed = true;
        clearTimeout(this.#handshakeTimer);
        void Promise.allSettled([...this.#running]).then(() => resolve());
      });
    });
    socket.on('error', (err) => this.#logger.debug({ err }, 'replica connection socket error'));
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('drain', () => this.#pump());
    this.#handshakeTimer = setTimeout(() => this.#drop(`no HELLO within ${options.limits.handshakeTimeoutMs} ms`), options.limits.handshakeTimeoutMs);
  }

  /** Hard close: in-flight requests finish against the store but their replies are dropped. */
  close(reason: string): void {
    this.#drop(reason);
  }

  #drop(reason: string, err?: unknown): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#handshakeTimer);
    const socket = this.#modules.socket;
    this.#logger.warn({ err: err === undefined ? undefined : toError(err), remote: `${socket.remoteAddress}:${socket.remotePort}` }, `replica server: dropping connection: ${reason}`);
    this.#outgoing.discard();
    socket.destroy();
  }

  #onData(chunk: Buffer): void {
    if (this.#closed) return;
    const bodies = this.#splitter.push(chunk);
    if (bodies instanceof ReplicaProtocolError) return this.#drop('bad frame', bodies);
    this.#queue.push(...bodies);
    this.#pump();
  }

  /** Start queued requests while under the limits; pause reading otherwise. */
  #pump(): void {
    const { maxInFlightRequests, maxInFlightBytes } = this.#options.limits;
    const socket = this.#modules.socket;
    while (!this.#closed && this.#queue.length > 0) {
      if (this.#phase.name === 'ready' && (this.#running.size >= maxInFlightRequests || this.#inFlightBytes >= maxInFlightBytes || socket.writableNeedDrain)) break;
      const body = this.#queue.shift();
      if (body === undefined) break;
      const request = decodeRequest(body);
      if (request instanceof ReplicaProtocolError) return this.#drop('bad request', request);
      if (this.#phase.name !== 'ready') {
        this.#handshake(request);
        continue;
      }
      this.#start(request);
    }
    const saturated = this.#queue.length > 0;
    if (saturated && !socket.isPaused()) socket.pause();
    if (!saturated && socket.isPaused() && !this.#closed) socket.resume();
  }

  #start(request: ReplicaRequest): void {
    if (request.opcode === Opcode.WRITE && (request.flags & RequestFlag.FUA) === 0 && this.#tryWriteNow(request)) return;
    const costBytes = request.payload.length + (request.opcode === Opcode.READ ? request.lengthBytes : 0);
    this.#inFlightBytes += costBytes;
    const work = this.#serve(request).finally(() => {
      this.#inFlightBytes -= costBytes;
      this.#running.delete(work);
      this.#pump();
    });
    this.#running.add(work);
  }

  /**
   * The service's synchronous write (replica-service.ts tryWriteNow): the
   * reply is queued at once, with no promise per request. False: serve it
   * the usual way.
   */
  #tryWriteNow(request: ReplicaRequest): boolean {
    let done: boolean;
    try {
      done = this.#modules.service.tryWriteNow(request.volumeId, request.generation, request.offset, request.payload, this.#opened);
    } catch (err) {
      this.#logger.error({ err, opcode: request.opcode, volumeId: request.volumeId }, 'replica request failed');
      this.#send(request.requestId, statusOfError(err), errorMessagePayload(err));
      return true;
    }
    if (done) this.#send(request.requestId, Status.OK, EMPTY_PAYLOAD);
    return done;
  }

  async #serve(request: ReplicaRequest): Promise<void> {
    let reply: { status: Status; payload: Buffer };
    try {
      reply = { status: Status.OK, payload: await this.#modules.service.execute(request, this.#opened) };
    } catch (err) {
      const status = statusOfError(err);
      if (status === Status.IO_ERROR) this.#logger.error({ err, opcode: request.opcode, volumeId: request.volumeId }, 'replica request failed');
      else this.#logger.debug({ err, opcode: request.opcode, volumeId: request.volumeId }, 'replica request refused');
      reply = { status, payload: errorMessagePayload(err) };
    }
    this.#send(request.requestId, reply.status, reply.payload);
  }

  #send(requestId: number, status: Status, payload: Buffer): void {
    if (this.#closed) return;
    const inline = payload.length <= INLINE_PAYLOAD_MAX_BYTES;
    const at = this.#outgoing.reserve(replyFrameBytes(payload.length, inline));
    encodeReplyInto({ requestId, status, payload }, this.#outgoing.slab, at, inline);
    if (!inline) this.#outgoing.append(payload);
  }

  /** HELLO steps (replica-handshake.ts); anything else before it completes is refused and ends the connection. */
  #handshake(request: ReplicaRequest): void {
    const { secret, nodeId } = this.#options;
    const isProof = (request.flags & RequestFlag.HELLO_PROOF) !== 0;
    if (request.opcode !== Opcode.HELLO) {
      return this.#refuse(request.requestId, `opcode ${request.opcode} before HELLO`);
    }
    if (this.#phase.name === 'greeting' && !isProof) {
      const greeting = decodeHelloGreeting(request.payload);
      if (greeting instanceof ReplicaProtocolError) return this.#drop('malformed HELLO', greeting);
      const step = acceptorStep(secret, nodeId, greeting, this.#modules.randomBytes(greeting.nonce.length));
      this.#phase = { name: 'proof', verify: step.verifyDialerProof, peerId: greeting.nodeId };
      this.#send(request.requestId, Status.OK, encodeHelloChallenge(step.challenge));
      return;
    }
    if (this.#phase.name === 'proof' && isProof && request.payload.length === PROOF_BYTES && this.#phase.verify(request.payload)) {
      clearTimeout(this.#handshakeTimer);
      this.#logger.debug({ peerId: this.#phase.peerId }, 'replica peer authenticated');
      this.#phase = { name: 'ready' };
      this.#send(request.requestId, Status.OK, Buffer.alloc(0));
      return;
    }
    this.#refuse(request.requestId, 'peer failed the cluster-secret challenge');
  }

  /** Answer UNAUTHORIZED, then close: the reply is flushed, a peer that does not close is cut after a second. */
  #refuse(requestId: number, reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#handshakeTimer);
    this.#logger.warn({ remote: this.#modules.socket.remoteAddress }, `replica server: refusing connection: ${reason}`);
    this.#outgoing.flush();
    this.#modules.socket.end(encodeReply({ requestId, status: Status.UNAUTHORIZED, payload: errorMessagePayload(reason) }));
    setTimeout(() => this.#modules.socket.destroy(), 1000).unref();
  }
}
