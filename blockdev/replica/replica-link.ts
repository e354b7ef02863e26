import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { PlinthError } from '../../common/plinth-error.js';
import { HANDSHAKE_NONCE_BYTES } from '../../consensus/transport/handshake.js';
import { decodeErrorMessage, decodeReply, encodeRequestInto, FrameSplitter, INLINE_PAYLOAD_MAX_BYTES, requestFrameBytes } from './replica-codec.js';
import { OutgoingFrames } from '../outgoing-frames.js';
import { dialerStep } from './replica-handshake.js';
import { decodeHelloChallenge, decodeOpenAnswer, encodeHelloGreeting } from './replica-payloads.js';
import { type Opcode, Opcode as Op, type ReplicaReply, type ReplicaRequest, ReplicaProtocolError, RequestFlag, Status } from './replica-protocol.js';
import { errorOfStatus } from './replica-status.js';

/**
 * One client connection to a replica server, for one volume at one
 * generation: connect, HELLO (cluster-secret challenge), OPEN, then
 * pipelined requests matched to replies by request id. When the socket
 * breaks, every request in flight fails with IO_ERROR (the controller then
 * faults the replica, invariant 2); reconnecting is RemoteReplica's job.
 *
 * Requests sent in the same event-loop turn are encoded into one buffer and
 * leave in one write after this turn's I/O callbacks (outgoing-frames.ts):
 * at depth 32 one syscall per request was the owner's largest cost, and on
 * loopback each send also runs the receiver's TCP path. Large payloads are
 * written as their own chunk, not copied into the frame, so the caller's
 * buffer must stay unchanged until the request settled or the link closed
 * (RemoteReplica closes a link whose large request timed out).
 */

export interface ReplicaLinkOptions {
  readonly host: string;
  readonly port: number;
  readonly nodeId: string;
  readonly secret: Buffer;
  readonly volumeId: string;
  readonly sizeBytes: number;
  readonly generation: number;
  readonly maxFrameBytes: number;
  readonly handshakeTimeoutMs: number;
}

export interface ReplicaLinkModules {
  readonly connect: (host: string, port: number) => Socket;
  readonly randomBytes: (size: number) => Buffer;
  readonly logger: Logger;
}

export interface LinkRequest {
  readonly opcode: Opcode;
  readonly flags: number;
  readonly offset: number;
  readonly lengthBytes: number;
  readonly payload: Buffer;
}

/** Who hears a request's answer: exactly one of the two is called, once. */
export interface LinkReplyTarget {
  readonly resolve: (payload: Buffer) => void;
  readonly reject: (err: PlinthError) => void;
}

export class ReplicaLink {
  readonly #options: ReplicaLinkOptions;
  readonly #modules: ReplicaLinkModules;
  readonly #pending = new Map<number, LinkReplyTarget>();
  readonly #splitter: FrameSplitter;
  #socket: Socket | undefined;
  #nextRequestId = 1;
  #closedReason: string | undefined;
  #outgoing: OutgoingFrames | undefined;
  readonly #closeListeners: ((reason: string) => void)[] = [];

  constructor(options: ReplicaLinkOptions, modules: ReplicaLinkModules) {
    this.#options = options;
    this.#modules = modules;
    this.#splitter = new FrameSplitter(options.maxFrameBytes);
  }

  get inFlight(): number {
    return this.#pending.size;
  }

  /** True while requests of this event-loop turn are being gathered into one writev. */
  get batching(): boolean {
    return this.#outgoing?.pending === true;
  }

  get closed(): boolean {
    return this.#closedReason !== undefined;
  }

  onClose(listener: (reason: string) => void): void {
    this.#closeListeners.push(listener);
  }

  /** Connect, authenticate and OPEN the volume. Rejects UNAUTHORIZED, FENCED, IO_ERROR or TIMEOUT; the link is then closed. */
  async open(): Promise<void> {
    const { host, port, handshakeTimeoutMs } = this.#options;
    const socket = this.#modules.connect(host, port);
    this.#socket = socket;
    this.#outgoing = new OutgoingFrames(socket);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (err) => this.#modules.logger.debug({ err, host, port }, 'replica link socket error'));
    socket.on('close', () => this.#fail(`connection to ${host}:${port} closed`));
    const timer = setTimeout(() => this.close(`no answer to HELLO/OPEN within ${handshakeTimeoutMs} ms`), handshakeTimeoutMs);
    try {
      await this.#hello();
      const answer = decodeOpenAnswer(await this.send({ opcode: Op.OPEN, flags: 0, offset: 0, lengthBytes: this.#options.sizeBytes, payload: Buffer.alloc(0) }));
      if (answer instanceof ReplicaProtocolError) throw answer;
      if (answer !== this.#options.sizeBytes) {
        throw new PlinthError('INVALID_ARGUMENT', `replica at ${host}:${port} holds volume ${this.#options.volumeId} with ${answer} bytes, expected ${this.#options.sizeBytes}`, {
          volume: this.#options.volumeId,
          sizeBytes: answer,
        });
      }
    } catch (err) {
      this.close(`open failed: ${err instanceof Error ? err.message : String(err)}`);
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  async #hello(): Promise<void> {
    const greeting = { nodeId: this.#options.nodeId, nonce: this.#modules.randomBytes(HANDSHAKE_NONCE_BYTES) };
    // A refusal arrives as UNAUTHORIZED; a broken connection as IO_ERROR.
    const answer = await this.send({ opcode: Op.HELLO, flags: 0, offset: 0, lengthBytes: 0, payload: encodeHelloGreeting(greeting) });
    const challenge = decodeHelloChallenge(answer);
    if (challenge instanceof ReplicaProtocolError) throw this.#unauthorized('malformed HELLO answer', challenge);
    const proof = dialerStep(this.#options.secret, greeting, challenge);
    if (proof === undefined) throw this.#unauthorized(`replica ${challenge.nodeId} failed the cluster-secret challenge`);
    await this.send({ opcode: Op.HELLO, flags: RequestFlag.HELLO_PROOF, offset: 0, lengthBytes: 0, payload: proof });
  }

  #unauthorized(message: string, cause?: unknown): PlinthError {
    const { host, port } = this.#options;
    return new PlinthError('UNAUTHORIZED', `replica handshake with ${host}:${port}: ${message}`, { host, port }, { cause });
  }

  /** Send one request; resolves with the OK payload or rejects with the mapped PlinthError. */
  send(request: LinkRequest): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => this.sendTo(request, { resolve, reject }));
  }

  /**
   * send() without a promise of its own, for the data path (RemoteReplica
   * settles its own): `target` hears the answer, or the failure, once. A
   * closed link fails it at once, synchronously.
   */
  sendTo(request: LinkRequest, target: LinkReplyTarget): void {
    const socket = this.#socket;
    if (socket === undefined || this.#closedReason !== undefined) {
      target.reject(new PlinthError('IO_ERROR', `replica link is closed: ${this.#closedReason ?? 'not open'}`, this.#context()));
      return;
    }
    const outgoing = this.#outgoing;
    if (outgoing === undefined) throw new PlinthError('INTERNAL', 'replica link has a socket but no writer');
    const requestId = this.#nextRequestId;
    // One literal shape for every request (no spread): the encoder's property loads stay monomorphic.
    const frame: ReplicaRequest = {
      opcode: request.opcode,
      flags: request.flags,
      requestId,
      generation: this.#options.generation,
      offset: request.offset,
      lengthBytes: request.lengthBytes,
      volumeId: request.opcode === Op.HELLO || request.opcode === Op.PING ? '' : this.#options.volumeId,
      payload: request.payload,
    };
    const inline = request.payload.length <= INLINE_PAYLOAD_MAX_BYTES;
    const at = outgoing.reserve(requestFrameBytes(frame, inline));
    try {
      encodeRequestInto(frame, outgoing.slab, at, inline);
    } catch (err) {
      // A value the wire cannot carry (a caller bug): the reserved bytes are garbage, so nothing more goes out.
      this.close(`could not encode a request: ${err instanceof Error ? err.message : String(err)}`);
      throw err;
    }
    if (!inline) outgoing.append(request.payload);
    this.#nextRequestId += 1;
    this.#pending.set(requestId, target);
  }

  close(reason: string): void {
    this.#fail(reason);
    this.#outgoing?.discard();
    this.#socket?.destroy();
  }

  #context(): Record<string, unknown> {
    return { volume: this.#options.volumeId, generation: this.#options.generation, host: this.#options.host, port: this.#options.port };
  }

  #onData(chunk: Buffer): void {
    const bodies = this.#splitter.push(chunk);
    if (bodies instanceof ReplicaProtocolError) return this.close(`bad frame from replica: ${bodies.message}`);
    for (const body of bodies) {
      const reply = decodeReply(body);
      if (reply instanceof ReplicaProtocolError) return this.close(`bad reply from replica: ${reply.message}`);
      this.#settle(reply);
    }
  }

  #settle(reply: ReplicaReply): void {
    const pending = this.#pending.get(reply.requestId);
    if (pending === undefined) return this.close(`reply to unknown request ${reply.requestId}`);
    this.#pending.delete(reply.requestId);
    if (reply.status === Status.OK) return pending.resolve(reply.payload);
    pending.reject(errorOfStatus(reply.status, decodeErrorMessage(reply.payload), this.#context()));
  }

  #fail(reason: string): void {
    if (this.#closedReason !== undefined) return;
    this.#closedReason = reason;
    const error = new PlinthError('IO_ERROR', `replica link failed: ${reason}`, this.#context());
    for (const pending of this.#pending.values()) pending.reject(error);
    this.#pending.clear();
    for (const listener of this.#closeListeners) listener(reason);
  }
}
