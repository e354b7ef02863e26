import { connect, type Socket } from 'node:net';
import { type ConnectionOptions, connect as connectTls, type TLSSocket } from 'node:tls';
import {
  decodeInfoReply,
  decodeOptionReply,
  decodeServerGreeting,
  decodeTransmissionReply,
  encodeClientFlags,
  encodeInfoRequestData,
  encodeMetaContextData,
  encodeOption,
  encodeRequest,
  type InfoReply,
  type OptionReply,
  type TransmissionReply,
} from '../../../../blockdev/nbd/client-codec.js';
import {
  BASE_ALLOCATION_CONTEXT,
  NBD_FLAG_C_FIXED_NEWSTYLE,
  NBD_FLAG_C_NO_ZEROES,
  NBD_INFO_BLOCK_SIZE,
  NBD_OPT_GO,
  NBD_OPT_SET_META_CONTEXT,
  NBD_OPT_STRUCTURED_REPLY,
  NBD_REP_ACK,
  NBD_REP_INFO,
  NBD_SIMPLE_REPLY_MAGIC,
  NBD_STRUCTURED_REPLY_MAGIC,
} from '../../../../blockdev/nbd/constants.js';
import { ProtocolError } from '../../../../blockdev/nbd/protocol-error.js';
import type { RequestHeader } from '../../../../blockdev/nbd/transmission-codec.js';

/**
 * A byte-level NBD client for tests: it sends exactly what a test builds with
 * the client codec and reads replies with a deadline, so a test can speak
 * both correct and broken protocol to the server and never hangs.
 */

const DEFAULT_READ_TIMEOUT_MS = 5000;

export interface NegotiateOptions {
  readonly exportName: string;
  readonly structuredReplies?: boolean;
  readonly blockStatus?: boolean;
}

export interface Negotiated {
  readonly sizeBytes: number;
  readonly transmissionFlags: number;
  readonly infos: InfoReply[];
}

export class RawNbdClient {
  /** The TCP socket, or its TLSSocket after upgradeToTls(). */
  private current: Socket;
  /** Resolves when the server closed the connection (or it failed). */
  readonly closed: Promise<void>;
  private resolveClosed: () => void = () => undefined;
  /** Received and not yet consumed. Replaced, never mutated, so views handed out stay valid. */
  private buffer = Buffer.alloc(0);
  /** Chunks received since `buffer` was last assembled (joined only when enough are there). */
  private incoming: Buffer[] = [];
  private incomingBytes = 0;
  private wake: (() => void) | undefined;
  private ended = false;
  /** READ lengths by handle, to decode simple read replies. */
  private readonly readLengths = new Map<bigint, number>();

  private constructor(socket: Socket) {
    this.current = socket;
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    this.attach(socket);
  }

  get socket(): Socket {
    return this.current;
  }

  private readonly onData = (chunk: Buffer): void => {
    this.incoming.push(chunk);
    this.incomingBytes += chunk.length;
    this.wake?.();
  };

  private readonly onClose = (): void => {
    this.ended = true;
    this.wake?.();
    this.resolveClosed();
  };

  private attach(socket: Socket): void {
    socket.on('data', this.onData);
    socket.on('close', this.onClose);
    socket.on('error', () => {
      // The server hanging up on a broken client is what many tests expect; 'close' follows.
    });
  }

  /**
   * After the server ACKed NBD_OPT_STARTTLS: run a TLS client handshake over
   * the same connection and read and write through it from then on.
   * Rejects if the handshake fails (e.g. the server's certificate does not verify).
   */
  async upgradeToTls(options: ConnectionOptions): Promise<TLSSocket> {
    if (this.pendingBytes !== 0) {
      throw new Error(`${this.pendingBytes} unread bytes before the TLS upgrade`);
    }
    const plain = this.current;
    plain.off('data', this.onData);
    plain.off('close', this.onClose);
    const secure = connectTls({ ...options, socket: plain });
    this.current = secure;
    this.attach(secure);
    await new Promise<void>((resolve, reject) => {
      const onError = (error: Error): void => reject(error);
      secure.once('error', onError);
      secure.once('secureConnect', () => {
        secure.off('error', onError);
        resolve();
      });
    });
    return secure;
  }

  static connect(port: number): Promise<RawNbdClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port });
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        socket.setNoDelay(true);
        resolve(new RawNbdClient(socket));
      });
    });
  }

  /** Connect, read the greeting and send client flags. */
  static async open(port: number, clientFlags = NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES): Promise<RawNbdClient> {
    const client = await RawNbdClient.connect(port);
    const greeting = decodeServerGreeting(await client.readExactly(18));
    if (greeting instanceof ProtocolError) {
      throw greeting;
    }
    client.send(encodeClientFlags(clientFlags));
    return client;
  }

  send(bytes: Buffer): void {
    this.current.write(bytes);
  }

  get isEnded(): boolean {
    return this.ended;
  }

  /** Bytes received and not consumed yet. */
  get pendingBytes(): number {
    return this.buffer.length + this.incomingBytes;
  }

  /** Wait until `count` bytes are buffered, then join them into `buffer` (once). */
  private async fill(count: number, deadline: number, wanted: string): Promise<void> {
    while (this.buffer.length + this.incomingBytes < count) {
      await this.waitForMore(deadline, wanted);
    }
    if (this.incoming.length > 0) {
      this.buffer = Buffer.concat([this.buffer, ...this.incoming]);
      this.incoming = [];
      this.incomingBytes = 0;
    }
  }

  private async waitForMore(deadline: number, wanted: string): Promise<void> {
    if (this.ended) {
      throw new Error(`connection closed while waiting for ${wanted} (have ${this.buffer.length} bytes)`);
    }
    const left = deadline - Date.now();
    if (left <= 0) {
      throw new Error(`timed out waiting for ${wanted} (have ${this.buffer.length} bytes)`);
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, left);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.wake = undefined;
  }

  async readExactly(count: number, timeoutMs = DEFAULT_READ_TIMEOUT_MS): Promise<Buffer> {
    await this.fill(count, Date.now() + timeoutMs, `${count} bytes`);
    const bytes = this.buffer.subarray(0, count);
    this.buffer = this.buffer.subarray(count);
    return bytes;
  }

  /**
   * Decode the next message; while incomplete, wait for at least `needed(bytes)`
   * bytes (a lower bound from the header, so large replies are joined once).
   */
  private async readDecoded<T extends { totalBytes: number }>(
    decode: (bytes: Buffer) => T | ProtocolError | undefined,
    timeoutMs = DEFAULT_READ_TIMEOUT_MS,
    needed: (bytes: Buffer) => number = (bytes) => bytes.length + 1,
  ): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    await this.fill(0, deadline, 'a reply');
    for (;;) {
      const decoded = decode(this.buffer);
      if (decoded instanceof ProtocolError) {
        throw decoded;
      }
      if (decoded !== undefined) {
        this.buffer = this.buffer.subarray(decoded.totalBytes);
        return decoded;
      }
      await this.fill(Math.max(this.buffer.length + 1, needed(this.buffer)), deadline, 'a complete reply');
    }
  }

  sendOption(option: number, data?: Buffer): void {
    this.send(encodeOption(option, data));
  }

  readOptionReply(timeoutMs?: number): Promise<OptionReply> {
    return this.readDecoded(decodeOptionReply, timeoutMs);
  }

  /** Read option replies up to and including the final one (ACK or an error). */
  async readOptionReplies(): Promise<OptionReply[]> {
    const replies: OptionReply[] = [];
    for (;;) {
      const reply = await this.readOptionReply();
      replies.push(reply);
      if (reply.replyType === NBD_REP_ACK || reply.replyType >= 0x80000000) {
        return replies;
      }
    }
  }

  /** Fixed newstyle negotiation up to transmission via NBD_OPT_GO. */
  async negotiate(options: NegotiateOptions): Promise<Negotiated> {
    if (options.structuredReplies === true || options.blockStatus === true) {
      this.sendOption(NBD_OPT_STRUCTURED_REPLY);
      expectAck(await this.readOptionReplies());
    }
    if (options.blockStatus === true) {
      this.sendOption(NBD_OPT_SET_META_CONTEXT, encodeMetaContextData(options.exportName, [BASE_ALLOCATION_CONTEXT]));
      expectAck(await this.readOptionReplies());
    }
    this.sendOption(NBD_OPT_GO, encodeInfoRequestData(options.exportName, [NBD_INFO_BLOCK_SIZE]));
    const replies = await this.readOptionReplies();
    expectAck(replies);
    const infos = replies
      .filter((reply) => reply.replyType === NBD_REP_INFO)
      .map((reply) => {
        const info = decodeInfoReply(reply.data);
        if (info instanceof ProtocolError) throw info;
        return info;
      });
    const exportInfo = infos.find((info) => info.info === 'export');
    if (exportInfo === undefined || exportInfo.info !== 'export') {
      throw new Error('NBD_OPT_GO succeeded without NBD_INFO_EXPORT');
    }
    return { sizeBytes: exportInfo.sizeBytes, transmissionFlags: exportInfo.transmissionFlags, infos };
  }

  request(header: RequestHeader, payload?: Buffer): void {
    if (header.type === 0) {
      this.readLengths.set(header.handle, header.lengthBytes);
    }
    this.send(encodeRequest(header, payload));
  }

  readReply(timeoutMs?: number): Promise<TransmissionReply> {
    return this.readDecoded(
      (bytes) => decodeTransmissionReply(bytes, (handle) => this.readLengths.get(handle)),
      timeoutMs,
      (bytes) => this.replyBytesNeeded(bytes),
    );
  }

  /** Size of the reply starting `bytes`, as far as its header tells. */
  private replyBytesNeeded(bytes: Buffer): number {
    if (bytes.length >= 20 && bytes.readUInt32BE(0) === NBD_STRUCTURED_REPLY_MAGIC) {
      return 20 + bytes.readUInt32BE(16);
    }
    if (bytes.length >= 16 && bytes.readUInt32BE(0) === NBD_SIMPLE_REPLY_MAGIC && bytes.readUInt32BE(4) === 0) {
      return 16 + (this.readLengths.get(bytes.readBigUInt64BE(8)) ?? 0);
    }
    return bytes.length + 1;
  }

  destroy(): void {
    this.current.destroy();
  }
}

function expectAck(replies: readonly OptionReply[]): void {
  const last = replies[replies.length - 1];
  if (last === undefined || last.replyType !== NBD_REP_ACK) {
    const message = last === undefined ? '' : last.data.toString('utf8');
    throw new Error(`option failed with reply type 0x${(last?.replyType ?? 0).toString(16)}: ${message}`);
  }
}
