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
import {
  allocateOffsetDataChunk,
  allocateSimpleReadReply,
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
  /** One complete reply (simple reply or a whole structured reply). */
  sendReply(reply: Buffer): void;
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
}

const NO_WRITE_OPTIONS: WriteOptions = Object.freeze({});
const FUA_WRITE_OPTIONS: WriteOptions = Object.freeze({ fua: true });

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

  constructor(options: TransmissionOptions, modules: TransmissionModules) {
    this.negotiated = options.negotiated;
    this.device = options.negotiated.handle.device;
    this.limits = options.limits;
    this.label = options.connectionLabel;
    this.sink = modules.sink;
    this.logger = modules.logger;
  }

  /** Start serving one request; its reply reaches the sink later. Never throws. */
  dispatch(message: RequestMessage): void {
    const { header } = message;
    const accounted = accountedBytesOf(header);
    const rejection = validateRequest(header, this.negotiated, message.payloadDiscarded);
    if (rejection !== undefined) {
      this.logger.debug({ connection: this.label, command: commandName(header.type) }, rejection.message);
      this.sink.sendReply(this.errorReply(header, rejection.errno, rejection.message));
      this.sink.requestFinished(accounted);
      return;
    }
    this.execute(header, message.payload, accounted).catch((error: unknown) => {
      // execute() handles device errors itself; reaching here is a bug in the shell.
      this.logger.error({ connection: this.label, err: toError(error) }, 'NBD request handling failed');
    });
  }

  /** proto.md "Terminating the transmission phase": during shutdown, answer with ESHUTDOWN. */
  rejectForShutdown(message: RequestMessage): void {
    const { header } = message;
    this.sink.sendReply(this.errorReply(header, NBD_ESHUTDOWN, 'server is shutting down'));
    this.sink.requestFinished(accountedBytesOf(header));
  }

  private async execute(header: RequestHeader, payload: Buffer | undefined, accounted: number): Promise<void> {
    let reply: Buffer;
    try {
      reply = await this.perform(header, payload);
    } catch (error) {
      reply = this.deviceErrorReply(header, error);
    }
    try {
      this.sink.sendReply(reply);
    } finally {
      this.sink.requestFinished(accounted);
    }
  }

  private perform(header: RequestHeader, payload: Buffer | undefined): Promise<Buffer> {
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
      const reply = allocateSimpleReadReply(lengthBytes);
      if (lengthBytes > 0) {
        await this.device.read(offset, reply.subarray(SIMPLE_REPLY_HEADER_BYTES));
      }
      writeSimpleReplyHeader(reply, 0, handle);
      return reply;
    }
    if (lengthBytes === 0) {
      // OFFSET_DATA must carry at least one byte; an empty read is just done.
      return encodeStructuredNone(handle);
    }
    const reply = allocateOffsetDataChunk(lengthBytes);
    await this.device.read(offset, reply.subarray(OFFSET_DATA_HEADER_BYTES));
    writeOffsetDataHeader(reply, NBD_REPLY_FLAG_DONE, handle, offset);
    return reply;
  }

  private async write(header: RequestHeader, payload: Buffer | undefined): Promise<Buffer> {
    if (payload === undefined || payload.length !== header.lengthBytes) {
      throw new PlinthError('INTERNAL', 'WRITE reached dispatch without its payload');
    }
    if (payload.length > 0) {
      const fua = (header.flags & NBD_CMD_FLAG_FUA) !== 0;
      await this.device.write(header.offset, payload, fua ? FUA_WRITE_OPTIONS : NO_WRITE_OPTIONS);
    }
    return encodeSimpleReply(0, header.handle);
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
