import type pino from 'pino';
import { PlinthError, toError } from '../../common/plinth-error.js';
import type { BlockDevice, WriteOptions, ZeroOptions } from '../block-device.js';
import { toBlockStatusDescriptors, unknownStatusDescriptor } from './block-status.js';
import {
  commandName,
  NBD_CMD_BLOCK_STATUS,
  NBD_CMD_CACHE,
  NBD_CMD_FLAG_FAST_ZERO,
  NBD_CMD_FLAG_FUA,
  NBD_CMD_FLAG_NO_HOLE,
  NBD_CMD_FLAG_REQ_ONE,
  NBD_CMD_FLUSH,
  NBD_CMD_READ,
  NBD_CMD_TRIM,
  NBD_CMD_WRITE,
  NBD_CMD_WRITE_ZEROES,
  NBD_ESHUTDOWN,
  NBD_REPLY_FLAG_DONE,
  SIMPLE_REPLY_HEADER_BYTES,
} from './constants.js';
import { errnoForError } from './errno-map.js';
import type { RequestMessage } from './frame-reader.js';
import type { NegotiatedExport } from './handshake.js';
import type { NbdLimits } from './limits.js';
import { validateRequest } from './request-validation.js';
import { BufferPool } from '../buffer-pool.js';
import {
  encodeBlockStatusChunk,
  encodeSimpleReply,
  encodeStructuredError,
  encodeStructuredNone,
  OFFSET_DATA_HEADER_BYTES,
  type RequestHeader,
  writeOffsetDataHeader,
  writeSimpleReplyHeader,
} from './transmission-codec.js';

/**
 * Request dispatch of the transmission phase: validate at the edge, call the
 * BlockDevice, build the reply. Requests run concurrently and each reply
 * goes out when its I/O completes (proto.md: replies MAY be out of order);
 * the sink writes whole replies, so they never interleave.
 */

/** Where finished replies go: the connection shell. */
export interface ReplySink {
  /**
   * One complete reply (simple reply or a whole structured reply).
   * `afterWrite`, when given, runs once the socket has taken every byte of
   * `reply` (not if the write failed): the reply buffer may be recycled then.
   */
  sendReply(reply: Buffer, afterWrite?: () => void): void;
  /**
   * sendReply copies replies of at most this many bytes before it returns,
   * so their buffer may be reused at once (0 or absent: it keeps them).
   */
  readonly copiedReplyMaxBytes?: number;
  /** The request is over (reply handed to sendReply); give back its budget. */
  requestFinished(accountedBytes: number): void;
}

export interface TransmissionOptions {
  readonly negotiated: NegotiatedExport;
  readonly limits: NbdLimits;
  /** "<connection id> <remote address>" for logs. */
  readonly connectionLabel: string;
}

export interface TransmissionModules {
  readonly sink: ReplySink;
  readonly logger: pino.Logger;
  /** Where large READ replies come from and WRITE payloads go back to (default: a pool of its own). */
  readonly buffers?: BufferPool;
}

const NO_WRITE_OPTIONS: WriteOptions = Object.freeze({});
const FUA_WRITE_OPTIONS: WriteOptions = Object.freeze({ fua: true });
/** Replies shorter than this never come from the buffer pool (its minimum is 64 KiB). */
const READ_REPLY_RECYCLE_MIN_BYTES = 4096;

function writeOptionsOf(header: RequestHeader): WriteOptions {
  return (header.flags & NBD_CMD_FLAG_FUA) !== 0 ? FUA_WRITE_OPTIONS : NO_WRITE_OPTIONS;
}

/** Data bytes a request holds while in flight (WRITE payload or READ reply). */
export function accountedBytesOf(header: RequestHeader): number {
  return header.type === NBD_CMD_READ || header.type === NBD_CMD_WRITE ? header.lengthBytes : 0;
}

export class TransmissionSession {
  private readonly negotiated: NegotiatedExport;
  private readonly device: BlockDevice;
  private readonly limits: NbdLimits;
  private readonly label: string;
  private readonly sink: ReplySink;
  private readonly logger: pino.Logger;
  private readonly buffers: BufferPool;
  /**
   * Small inline READ replies are built here and copied out by the sink.
   * Why (perf): a fresh 4 KiB reply per read is an ArrayBuffer of its own,
   * and that external memory made V8 run a major GC every ~100 ms at 60k
   * reads/s.
   */
  private replyScratch: Buffer | undefined;

  constructor(options: TransmissionOptions, modules: TransmissionModules) {
    this.negotiated = options.negotiated;
    this.device = options.negotiated.handle.device;
    this.limits = options.limits;
    this.label = options.connectionLabel;
    this.sink = modules.sink;
    this.logger = modules.logger;
    this.buffers = modules.buffers ?? new BufferPool();
  }

  /** Start serving one request; its reply reaches the sink later. Never throws. */
  dispatch(message: RequestMessage): void {
    const { header } = message;
    const accounted = accountedBytesOf(header);
    const rejection = validateRequest(header, this.negotiated, message.payloadDiscarded);
    if (rejection !== undefined) {
      this.releasePayload(message.payload);
      this.logger.debug({ connection: this.label, command: commandName(header.type) }, rejection.message);
      this.sink.sendReply(this.errorReply(header, rejection.errno, rejection.message));
      this.sink.requestFinished(accounted);
      return;
    }
    if (header.type === NBD_CMD_READ && this.device.readInline !== undefined && this.tryReadInline(header, accounted)) {
      return;
    }
    if (header.type === NBD_CMD_WRITE && message.payload !== undefined && this.tryWriteInline(header, message.payload, accounted)) {
      return;
    }
    const payload = message.payloadChunks === undefined ? message.payload : message.payloadChunks;
    this.execute(header, payload, accounted).catch((error: unknown) => {
      // execute() handles device errors itself; reaching here is a bug in the shell.
      this.logger.error({ connection: this.label, err: toError(error) }, 'NBD request handling failed');
    });
  }

  /** proto.md "Terminating the transmission phase": during shutdown, answer with ESHUTDOWN. */
  rejectForShutdown(message: RequestMessage): void {
    const { header } = message;
    this.releasePayload(message.payload);
    this.sink.sendReply(this.errorReply(header, NBD_ESHUTDOWN, 'server is shutting down'));
    this.sink.requestFinished(accountedBytesOf(header));
  }

  /**
   * The synchronous READ path (BlockDevice.readInline): when the device
   * completes the read inline, the reply goes out in this call with no
   * promise at all. Perf round 2: qd1 spent ~18 µs per request in the JS
   * path between socket read and socket write. False: nothing was done.
   */
  private tryReadInline(header: RequestHeader, accounted: number): boolean {
    const { handle, offset, lengthBytes } = header;
    const structured = this.negotiated.structuredReplies;
    const readInline = this.device.readInline;
    if (lengthBytes === 0 || readInline === undefined) {
      return false;
    }
    const headerBytes = structured ? OFFSET_DATA_HEADER_BYTES : SIMPLE_REPLY_HEADER_BYTES;
    const reply = this.inlineReplyBuffer(headerBytes + lengthBytes);
    try {
      if (!readInline.call(this.device, offset, reply.subarray(headerBytes))) {
        this.buffers.release(reply);
        return false;
      }
    } catch (error) {
      this.buffers.release(reply);
      this.finish(this.deviceErrorReply(header, error), accounted);
      return true;
    }
    if (structured) {
      writeOffsetDataHeader(reply, NBD_REPLY_FLAG_DONE, handle, offset);
    } else {
      writeSimpleReplyHeader(reply, 0, handle);
    }
    this.finish(reply, accounted);
    return true;
  }

  /** A scratch view when the sink copies a reply this long before sendReply returns, else a buffer of its own. */
  private inlineReplyBuffer(lengthBytes: number): Buffer {
    const copiedMax = this.sink.copiedReplyMaxBytes ?? 0;
    if (lengthBytes > copiedMax) return this.buffers.acquire(lengthBytes);
    if (this.replyScratch === undefined || this.replyScratch.length < copiedMax) this.replyScratch = Buffer.allocUnsafeSlow(copiedMax);
    return this.replyScratch.subarray(0, lengthBytes);
  }

  /** The synchronous WRITE path (BlockDevice.writeInline), like tryReadInline; FUA writes take write(). */
  private tryWriteInline(header: RequestHeader, payload: Buffer, accounted: number): boolean {
    const writeInline = this.device.writeInline;
    if (writeInline === undefined || payload.length === 0 || payload.length !== header.lengthBytes || (header.flags & NBD_CMD_FLAG_FUA) !== 0) {
      return false;
    }
    let reply: Buffer;
    try {
      if (!writeInline.call(this.device, header.offset, payload)) {
        return false;
      }
      reply = encodeSimpleReply(0, header.handle);
    } catch (error) {
      reply = this.deviceErrorReply(header, error);
    }
    // The device is done with the data either way.
    this.buffers.release(payload);
    this.finish(reply, accounted);
    return true;
  }

  private async execute(header: RequestHeader, payload: Buffer | readonly Buffer[] | undefined, accounted: number): Promise<void> {
    let reply: Buffer;
    try {
      reply = await this.perform(header, payload);
    } catch (error) {
      reply = this.deviceErrorReply(header, error);
    }
    this.finish(reply, accounted);
  }

  private finish(reply: Buffer, accounted: number): void {
    try {
      // Only data-carrying READ replies can come from the pool; release() ignores the rest.
      this.sink.sendReply(reply, reply.length >= READ_REPLY_RECYCLE_MIN_BYTES ? () => this.buffers.release(reply) : undefined);
    } finally {
      this.sink.requestFinished(accounted);
    }
  }

  private perform(header: RequestHeader, payload: Buffer | readonly Buffer[] | undefined): Promise<Buffer> {
    switch (header.type) {
      case NBD_CMD_READ:
        return this.read(header);
      case NBD_CMD_WRITE:
        return this.write(header, payload);
      case NBD_CMD_FLUSH:
        return this.succeedAfter(header, this.device.flush());
      case NBD_CMD_TRIM:
        return this.trim(header);
      case NBD_CMD_WRITE_ZEROES:
        return this.writeZeroes(header);
      case NBD_CMD_BLOCK_STATUS:
        return this.blockStatus(header);
      case NBD_CMD_CACHE:
        // A hint with no semantic effect (proto.md NBD_CMD_CACHE); the range was validated.
        return Promise.resolve(encodeSimpleReply(0, header.handle));
      default:
        return Promise.reject(new PlinthError('INTERNAL', `unvalidated command ${header.type} reached dispatch`));
    }
  }

  /** One allocation of header + data; the device reads straight into the data part. */
  private async read(header: RequestHeader): Promise<Buffer> {
    const { handle, offset, lengthBytes } = header;
    if (!this.negotiated.structuredReplies) {
      const reply = this.buffers.acquire(SIMPLE_REPLY_HEADER_BYTES + lengthBytes);
      if (lengthBytes > 0) {
        await this.readInto(offset, reply, SIMPLE_REPLY_HEADER_BYTES);
      }
      writeSimpleReplyHeader(reply, 0, handle);
      return reply;
    }
    if (lengthBytes === 0) {
      // OFFSET_DATA must carry at least one byte; an empty read is just done.
      return encodeStructuredNone(handle);
    }
    const reply = this.buffers.acquire(OFFSET_DATA_HEADER_BYTES + lengthBytes);
    await this.readInto(offset, reply, OFFSET_DATA_HEADER_BYTES);
    writeOffsetDataHeader(reply, NBD_REPLY_FLAG_DONE, handle, offset);
    return reply;
  }

  /** The device fills `reply` after its header; on failure the buffer goes back to the pool. */
  private async readInto(offset: number, reply: Buffer, headerBytes: number): Promise<void> {
    try {
      await this.device.read(offset, reply.subarray(headerBytes));
    } catch (error) {
      this.buffers.release(reply);
      throw error;
    }
  }

  private async write(header: RequestHeader, payload: Buffer | readonly Buffer[] | undefined): Promise<Buffer> {
    if (payload === undefined) {
      throw new PlinthError('INTERNAL', 'WRITE reached dispatch without its payload');
    }
    if (!Buffer.isBuffer(payload)) {
      await this.writeChunks(header, payload);
      return encodeSimpleReply(0, header.handle);
    }
    try {
      if (payload.length !== header.lengthBytes) {
        throw new PlinthError('INTERNAL', 'WRITE reached dispatch with a payload of the wrong length');
      }
      if (payload.length > 0) {
        await this.device.write(header.offset, payload, writeOptionsOf(header));
      }
    } finally {
      // BlockDevice.write holds the data only until it settles.
      this.buffers.release(payload);
    }
    return encodeSimpleReply(0, header.handle);
  }

  /** A payload kept as socket chunks (frame-reader.ts): one device writev, nothing to release. */
  private async writeChunks(header: RequestHeader, chunks: readonly Buffer[]): Promise<void> {
    let lengthBytes = 0;
    for (const chunk of chunks) {
      lengthBytes += chunk.length;
    }
    const writev = this.device.writev;
    if (lengthBytes !== header.lengthBytes || writev === undefined) {
      throw new PlinthError('INTERNAL', 'WRITE reached dispatch with payload chunks it cannot write');
    }
    await writev.call(this.device, header.offset, chunks, writeOptionsOf(header));
  }

  private releasePayload(payload: Buffer | undefined): void {
    if (payload !== undefined) {
      this.buffers.release(payload);
    }
  }

  private async trim(header: RequestHeader): Promise<Buffer> {
    if (header.lengthBytes > 0) {
      const fua = (header.flags & NBD_CMD_FLAG_FUA) !== 0;
      await this.device.trim(header.offset, header.lengthBytes, fua ? FUA_WRITE_OPTIONS : NO_WRITE_OPTIONS);
    }
    return encodeSimpleReply(0, header.handle);
  }

  private async writeZeroes(header: RequestHeader): Promise<Buffer> {
    if (header.lengthBytes > 0) {
      const options: ZeroOptions = {
        fua: (header.flags & NBD_CMD_FLAG_FUA) !== 0,
        noHole: (header.flags & NBD_CMD_FLAG_NO_HOLE) !== 0,
        fastZero: (header.flags & NBD_CMD_FLAG_FAST_ZERO) !== 0,
      };
      await this.device.writeZeroes(header.offset, header.lengthBytes, options);
    }
    return encodeSimpleReply(0, header.handle);
  }

  private async blockStatus(header: RequestHeader): Promise<Buffer> {
    const contextId = this.negotiated.blockStatusContextId;
    if (contextId === undefined) {
      throw new PlinthError('INTERNAL', 'BLOCK_STATUS reached dispatch without a metadata context');
    }
    const { offset, lengthBytes } = header;
    if (!this.device.capabilities.blockStatus) {
      return encodeBlockStatusChunk(header.handle, contextId, unknownStatusDescriptor(lengthBytes));
    }
    const runs = await this.device.blockStatus(offset, lengthBytes);
    const requestOne = (header.flags & NBD_CMD_FLAG_REQ_ONE) !== 0;
    const descriptors = toBlockStatusDescriptors(runs, lengthBytes, requestOne, this.limits.maxBlockStatusExtents);
    if (descriptors === undefined) {
      throw new PlinthError('INTERNAL', `device returned invalid block status for [${offset}, +${lengthBytes})`, {
        offset,
        lengthBytes,
      });
    }
    return encodeBlockStatusChunk(header.handle, contextId, descriptors);
  }

  private async succeedAfter(header: RequestHeader, work: Promise<void>): Promise<Buffer> {
    await work;
    return encodeSimpleReply(0, header.handle);
  }

  private deviceErrorReply(header: RequestHeader, error: unknown): Buffer {
    const fastZero = (header.flags & NBD_CMD_FLAG_FAST_ZERO) !== 0;
    const { errno, expected } = errnoForError(error, header.type, fastZero);
    const err = toError(error);
    const log = { connection: this.label, command: commandName(header.type), offset: header.offset, errno, err };
    if (expected) {
      this.logger.debug(log, `NBD ${commandName(header.type)} failed: ${err.message}`);
    } else {
      this.logger.warn(log, `NBD ${commandName(header.type)} failed unexpectedly`);
    }
    return this.errorReply(header, errno, err.message);
  }

  /**
   * proto.md: with structured replies a READ MUST get a structured reply and
   * errors SHOULD be error chunks (they carry a message); otherwise a simple
   * reply with the errno and no payload.
   */
  private errorReply(header: RequestHeader, errno: number, message: string): Buffer {
    return this.negotiated.structuredReplies
      ? encodeStructuredError(header.handle, errno, message)
      : encodeSimpleReply(errno, header.handle);
  }
}
