import { randomBytes as cryptoRandomBytes } from 'node:crypto';
import { connect as netConnect, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { isPlinthError, PlinthError, toError } from '../../common/plinth-error.js';
import { reconnectDelayMs } from '../../consensus/transport/backoff.js';
import type { BlockCapabilities, BlockDevice, BlockSizeHints, ExtentStatus, TrimOptions, WriteOptions, ZeroOptions } from '../block-device.js';
import { assertInRange } from '../range.js';
import { encodeDirtyMarker, decodeRegionList, decodeStatusRuns, type RegionList } from './replica-payloads.js';
import { DEFAULT_MAX_IO_BYTES, maxFrameBytesFor, Opcode, ReplicaProtocolError, RequestFlag } from './replica-protocol.js';
import { type LinkRequest, ReplicaLink } from './replica-link.js';
import { INLINE_PAYLOAD_MAX_BYTES } from './replica-codec.js';

/**
 * A volume's replica on another node, as a BlockDevice for the owner's
 * controller. Every request carries the generation given at construction;
 * a replica that has seen a higher one answers FENCED and this device stays
 * fenced (invariant 3). Requests are pipelined over `connections` links,
 * each reconnecting with capped, jittered backoff; a link that breaks fails
 * its in-flight requests with IO_ERROR so the controller can fault the
 * replica (invariant 2). Requests waiting for a link and in flight are
 * bounded by `maxQueuedRequests` (overflow: BUSY) and each by
 * `requestTimeoutMs` (TIMEOUT; one sweep timer checks every deadline, so it
 * fires up to an eighth of the timeout, at most 250 ms, late).
 */

export interface RemoteReplicaOptions {
  readonly host: string;
  readonly port: number;
  /** This node's id, proven in HELLO. */
  readonly nodeId: string;
  readonly secret: Buffer;
  readonly volumeId: string;
  readonly sizeBytes: number;
  readonly generation: number;
  readonly connections?: number;
  readonly requestTimeoutMs?: number;
  readonly maxQueuedRequests?: number;
  readonly maxIoBytes?: number;
  readonly handshakeTimeoutMs?: number;
  readonly reconnectBaseDelayMs?: number;
  readonly reconnectMaxDelayMs?: number;
}

export interface RemoteReplicaModules {
  readonly logger: Logger;
  readonly connect?: (host: string, port: number) => Socket;
  readonly randomBytes?: (size: number) => Buffer;
  /** [0, 1), for backoff jitter. */
  readonly random?: () => number;
  /** Monotonic milliseconds for request deadlines (default performance.now). */
  readonly nowMs?: () => number;
}

export const REMOTE_REPLICA_CAPABILITIES: BlockCapabilities = {
  readOnly: false,
  fua: true,
  trim: true,
  writeZeroes: true,
  fastZero: true,
  blockStatus: true,
  multiConn: true,
};

/** One request from submit to its answer; also the link's reply target. */
interface Waiter {
  readonly request: LinkRequest;
  /** Past this (nowMs clock) the sweep fails it with TIMEOUT. */
  readonly deadlineMs: number;
  /** The link the request went out on, once dispatched. */
  link: ReplicaLink | undefined;
  readonly resolve: (payload: Buffer) => void;
  readonly reject: (err: PlinthError) => void;
}

/** #submit's marker for requests whose OK answer carries nothing the caller needs. */
const IGNORE_PAYLOAD = Symbol('ignore payload');

/** Requests that change the replica's data: one that timed out may still land (see #timeOut). */
const MUTATIONS: ReadonlySet<number> = new Set([Opcode.WRITE, Opcode.TRIM, Opcode.WRITE_ZEROES]);

/** How often outstanding requests are checked against their deadline, as a share of the timeout. */
const SWEEPS_PER_TIMEOUT = 8;
const MAX_SWEEP_INTERVAL_MS = 250;

export class RemoteReplica implements BlockDevice {
  readonly sizeBytes: number;
  readonly capabilities = REMOTE_REPLICA_CAPABILITIES;
  readonly blockSize: BlockSizeHints;
  readonly #options: RemoteReplicaOptions;
  readonly #modules: RemoteReplicaModules;
  readonly #logger: Logger;
  readonly #links: (ReplicaLink | undefined)[];
  readonly #waiting: Waiter[] = [];
  /** Submitted and not yet settled (waiting for a link or in flight): bounded by maxQueuedRequests. */
  readonly #outstanding = new Set<Waiter>();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #nowMs: () => number;
  /** One deadline sweep for all requests instead of a timer per request (set up on first use). */
  #sweepTimer: NodeJS.Timeout | undefined;
  #nextLink = 0;
  #fenced: PlinthError | undefined;
  #closed = false;
  #firstOpen: Promise<void> | undefined;

  constructor(options: RemoteReplicaOptions, modules: RemoteReplicaModules) {
    this.#options = options;
    this.#modules = modules;
    this.sizeBytes = options.sizeBytes;
    this.blockSize = { minimumBytes: 1, preferredBytes: 4096, maximumBytes: options.maxIoBytes ?? DEFAULT_MAX_IO_BYTES };
    this.#logger = modules.logger.child({ component: 'remote-replica', volumeId: options.volumeId, replica: `${options.host}:${options.port}` });
    this.#links = new Array<ReplicaLink | undefined>(Math.max(1, options.connections ?? 1)).fill(undefined);
    this.#nowMs = modules.nowMs ?? (() => performance.now());
  }

  /** Open every link once; resolves when the first is ready, rejects if all fail (UNAUTHORIZED, FENCED, IO_ERROR). */
  connect(): Promise<void> {
    this.#firstOpen ??= Promise.any(this.#links.map((_, slot) => this.#openSlot(slot, 0))).catch((err: unknown) => {
      throw err instanceof AggregateError ? toError(err.errors[0]) : err;
    });
    return this.#firstOpen;
  }

  async read(offset: number, target: Buffer): Promise<void> {
    assertInRange(offset, target.length, this.sizeBytes);
    const data = await this.#submit({ opcode: Opcode.READ, flags: 0, offset, lengthBytes: target.length, payload: Buffer.alloc(0) });
    if (data.length !== target.length) throw new PlinthError('IO_ERROR', `replica answered a ${target.length}-byte READ with ${data.length} bytes`);
    data.copy(target);
  }

  write(offset: number, data: Buffer, options?: WriteOptions): Promise<void> {
    try {
      assertInRange(offset, data.length, this.sizeBytes);
    } catch (err) {
      return Promise.reject(toError(err));
    }
    // Settled by the link's answer directly: no async layer of its own (the data path's most frequent call).
    return this.#submit({ opcode: Opcode.WRITE, flags: options?.fua === true ? RequestFlag.FUA : 0, offset, lengthBytes: data.length, payload: data }, IGNORE_PAYLOAD);
  }

  async flush(): Promise<void> {
    await this.#submit({ opcode: Opcode.FLUSH, flags: 0, offset: 0, lengthBytes: 0, payload: Buffer.alloc(0) });
  }

  async trim(offset: number, lengthBytes: number, options?: TrimOptions): Promise<void> {
    assertInRange(offset, lengthBytes, this.sizeBytes);
    await this.#submit({ opcode: Opcode.TRIM, flags: options?.fua === true ? RequestFlag.FUA : 0, offset, lengthBytes, payload: Buffer.alloc(0) });
  }

  async writeZeroes(offset: number, lengthBytes: number, options?: ZeroOptions): Promise<void> {
    assertInRange(offset, lengthBytes, this.sizeBytes);
    const flags =
      (options?.fua === true ? RequestFlag.FUA : 0) | (options?.noHole === true ? RequestFlag.NO_HOLE : 0) | (options?.fastZero === true ? RequestFlag.FAST_ZERO : 0);
    await this.#submit({ opcode: Opcode.WRITE_ZEROES, flags, offset, lengthBytes, payload: Buffer.alloc(0) });
  }

  async blockStatus(offset: number, lengthBytes: number): Promise<ExtentStatus[]> {
    assertInRange(offset, lengthBytes, this.sizeBytes);
    return decoded(decodeStatusRuns(await this.#submit({ opcode: Opcode.BLOCK_STATUS, flags: 0, offset, lengthBytes, payload: Buffer.alloc(0) })));
  }

  /** Regions changed since `markerSeq` in [offset, +lengthBytes); pass 2^53-1 to only learn the current marker. */
  async getDirty(markerSeq: number, offset: number, lengthBytes: number): Promise<RegionList> {
    const payload = encodeDirtyMarker(markerSeq);
    return decoded(decodeRegionList(await this.#submit({ opcode: Opcode.GET_DIRTY, flags: 0, offset, lengthBytes, payload })));
  }

  /** Regions of the replica's activity log in [offset, +lengthBytes) (failover resync, invariant 4). */
  async getActivity(offset: number, lengthBytes: number): Promise<RegionList> {
    return decoded(decodeRegionList(await this.#submit({ opcode: Opcode.GET_ACTIVITY, flags: 0, offset, lengthBytes, payload: Buffer.alloc(0) })));
  }

  /** MARK_REPAIRED: this replica was made identical to a good source; it clears its unclean flag (issue 7). */
  async markRepaired(): Promise<void> {
    await this.#submit({ opcode: Opcode.MARK_REPAIRED, flags: 0, offset: 0, lengthBytes: 0, payload: Buffer.alloc(0) });
  }

  async ping(): Promise<void> {
    await this.#submit({ opcode: Opcode.PING, flags: 0, offset: 0, lengthBytes: 0, payload: Buffer.alloc(0) });
  }

  /** Fail everything waiting, close the links and stop reconnecting. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    clearInterval(this.#sweepTimer);
    const error = new PlinthError('SHUTTING_DOWN', `remote replica of ${this.#options.volumeId} is closed`, { volume: this.#options.volumeId });
    for (const waiter of this.#waiting.splice(0)) waiter.reject(error);
    for (const link of this.#links) link?.close('remote replica closed');
  }

  #submit(request: LinkRequest): Promise<Buffer>;
  #submit(request: LinkRequest, answer: typeof IGNORE_PAYLOAD): Promise<void>;
  #submit(request: LinkRequest, answer?: typeof IGNORE_PAYLOAD): Promise<Buffer | void> {
    if (this.#closed) return Promise.reject(new PlinthError('SHUTTING_DOWN', `remote replica of ${this.#options.volumeId} is closed`));
    if (this.#fenced !== undefined) return Promise.reject(this.#fenced);
    const limit = this.#options.maxQueuedRequests ?? 256;
    if (this.#outstanding.size >= limit) {
      return Promise.reject(new PlinthError('BUSY', `remote replica of ${this.#options.volumeId} has ${limit} requests outstanding`, { volume: this.#options.volumeId, limit }));
    }
    this.#sweepTimer ??= this.#startSweep();
    const deadlineMs = this.#nowMs() + this.#timeoutMs();
    return new Promise<Buffer | void>((resolve, reject) => {
      const waiter: Waiter = {
        request,
        deadlineMs,
        link: undefined,
        resolve: (payload) => {
          if (this.#outstanding.delete(waiter)) resolve(answer === IGNORE_PAYLOAD ? undefined : payload);
        },
        reject: (err) => {
          if (isPlinthError(err, 'FENCED')) this.#fence(err);
          if (this.#outstanding.delete(waiter)) reject(err);
        },
      };
      this.#outstanding.add(waiter);
      this.#waiting.push(waiter);
      this.#dispatch();
    });
  }

  #timeoutMs(): number {
    return this.#options.requestTimeoutMs ?? 30_000;
  }

  /** A request times out between requestTimeoutMs and one sweep interval later (at most an eighth more, at most 250 ms). */
  #startSweep(): NodeJS.Timeout {
    const intervalMs = Math.max(1, Math.min(MAX_SWEEP_INTERVAL_MS, Math.floor(this.#timeoutMs() / SWEEPS_PER_TIMEOUT)));
    const timer = setInterval(() => this.#sweep(), intervalMs);
    // The sockets keep the process alive while requests are out; the sweep alone never should.
    timer.unref();
    return timer;
  }

  #sweep(): void {
    const nowMs = this.#nowMs();
    for (const waiter of this.#outstanding) {
      if (waiter.deadlineMs <= nowMs) this.#timeOut(waiter);
    }
  }

  #timeOut(waiter: Waiter): void {
    const index = this.#waiting.indexOf(waiter);
    if (index >= 0) this.#waiting.splice(index, 1);
    // The link goes down with a timed-out request (the controller faults this replica on TIMEOUT anyway) when
    //  - its payload may still sit in the link's socket, uncopied: the caller may reuse the buffer once this rejects;
    //  - it is a mutation: requests behind it on the link that the replica has not started yet are then
    //    dropped with the connection (replica-connection.ts), so none of them starts after a rebuild's
    //    GET_ACTIVITY barrier and lands over what the catch-up copied (issue 7, replica-service.ts).
    // It fails with TIMEOUT first: the link's close fails only the others still on it.
    const timeoutMs = this.#timeoutMs();
    waiter.reject(new PlinthError('TIMEOUT', `replica ${this.#options.host}:${this.#options.port} did not answer within ${timeoutMs} ms`, { volume: this.#options.volumeId, timeoutMs }));
    const { opcode, payload } = waiter.request;
    if (payload.length > INLINE_PAYLOAD_MAX_BYTES || MUTATIONS.has(opcode)) waiter.link?.close(`a ${payload.length}-byte request (opcode ${opcode}) timed out`);
  }

  /** Hand waiting requests to ready links, least busy first. */
  #dispatch(): void {
    while (this.#waiting.length > 0) {
      const link = this.#pickLink();
      const waiter = link === undefined ? undefined : this.#waiting.shift();
      if (link === undefined || waiter === undefined) return;
      waiter.link = link;
      link.sendTo(waiter.request, waiter);
    }
  }

  /**
   * A link already gathering this turn's requests first: they then leave in
   * one writev instead of one per link (on loopback each send syscall also
   * runs the receiver's TCP path, so fewer, fuller writes win). Otherwise the
   * least busy link, so the next turn's batch goes to another one.
   */
  #pickLink(): ReplicaLink | undefined {
    for (const link of this.#links) {
      if (link !== undefined && link.batching && !link.closed) return link;
    }
    let best: ReplicaLink | undefined;
    for (let step = 0; step < this.#links.length; step += 1) {
      const link = this.#links[(this.#nextLink + step) % this.#links.length];
      if (link !== undefined && !link.closed && (best === undefined || link.inFlight < best.inFlight)) best = link;
    }
    this.#nextLink = (this.#nextLink + 1) % this.#links.length;
    return best;
  }

  #fence(err: PlinthError): void {
    if (this.#fenced !== undefined) return;
    this.#fenced = err;
    this.#logger.warn({ generation: this.#options.generation }, 'fenced by a higher generation; this device accepts no more I/O');
    for (const waiter of this.#waiting.splice(0)) waiter.reject(err);
  }

  async #openSlot(slot: number, attempt: number): Promise<void> {
    const o = this.#options;
    const link = new ReplicaLink(
      { host: o.host, port: o.port, nodeId: o.nodeId, secret: o.secret, volumeId: o.volumeId, sizeBytes: o.sizeBytes, generation: o.generation, maxFrameBytes: maxFrameBytesFor(o.maxIoBytes ?? DEFAULT_MAX_IO_BYTES), handshakeTimeoutMs: o.handshakeTimeoutMs ?? 5000 },
      { connect: this.#modules.connect ?? ((host, port) => netConnect({ host, port })), randomBytes: this.#modules.randomBytes ?? cryptoRandomBytes, logger: this.#logger },
    );
    try {
      await link.open();
    } catch (err) {
      if (isPlinthError(err, 'FENCED')) this.#fence(err);
      else this.#scheduleReconnect(slot, attempt + 1, err);
      throw err;
    }
    if (this.#closed) return link.close('remote replica closed');
    this.#links[slot] = link;
    link.onClose((reason) => {
      if (this.#links[slot] === link) this.#links[slot] = undefined;
      this.#scheduleReconnect(slot, 0, reason);
    });
    this.#dispatch();
  }

  #scheduleReconnect(slot: number, attempt: number, why: unknown): void {
    if (this.#closed || this.#fenced !== undefined) return;
    const delayMs = reconnectDelayMs(attempt, { baseDelayMs: this.#options.reconnectBaseDelayMs ?? 100, maxDelayMs: this.#options.reconnectMaxDelayMs ?? 5000 }, this.#modules.random ?? Math.random);
    this.#logger.warn({ slot, attempt, delayMs, reason: why instanceof Error ? why.message : String(why) }, 'replica link down; reconnecting');
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      this.#openSlot(slot, attempt).catch((err: unknown) => this.#logger.debug({ err, slot }, 'replica reconnect attempt failed'));
    }, delayMs);
    this.#timers.add(timer);
  }
}

function decoded<T>(value: T | ReplicaProtocolError): T {
  if (value instanceof ReplicaProtocolError) throw new PlinthError('IO_ERROR', `replica sent a malformed answer: ${value.message}`, { reason: value.reason }, { cause: value });
  return value;
}
