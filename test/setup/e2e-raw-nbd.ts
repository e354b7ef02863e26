/**
 * A deliberately minimal NBD client over a raw net.Socket, for sending the
 * daemon bytes no well-behaved client would (NBD `proto.md`: "Fixed newstyle
 * negotiation", "Option haggling", "Transmission"). Every wait is bounded.
 */
import { connect, type Socket } from 'node:net';

export const NBD_MAGIC = Buffer.from('NBDMAGIC', 'latin1');
export const IHAVEOPT = Buffer.from('IHAVEOPT', 'latin1');
export const OPTION_REPLY_MAGIC = 0x0003e889045565a9n;
export const REQUEST_MAGIC = 0x25609513;
export const SIMPLE_REPLY_MAGIC = 0x67446698;
/** NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES */
export const CLIENT_FLAGS = 0b11;
export const NBD_OPT_GO = 7;
export const NBD_REP_ACK = 1;
export const NBD_REP_FLAG_ERROR = 0x8000_0000;
export const NBD_CMD_READ = 0;
export const NBD_CMD_WRITE = 1;
export const NBD_CMD_DISC = 2;
const GREETING_BYTES = 8 + 8 + 2;

export interface OptionReply {
  readonly option: number;
  readonly replyType: number;
  readonly data: Buffer;
}

export class RawNbdClient {
  private buffered = Buffer.alloc(0);
  private closed = false;
  private waiter: (() => void) | undefined;
  /** The socket's last error (e.g. ECONNRESET after the server dropped us). */
  lastError: Error | undefined;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, chunk]);
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', (err) => {
      // ECONNRESET and friends are an expected outcome of bad input; 'close'
      // follows and is what the tests observe. Kept for failure messages.
      this.lastError = err;
    });
  }

  static connect(host: string, port: number, timeoutMs: number): Promise<RawNbdClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connect ${host}:${port} timed out`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(new RawNbdClient(socket));
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  isClosed(): boolean {
    return this.closed;
  }

  write(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Write and wait until the bytes are handed to the kernel. */
  writeFlushed(bytes: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.write(bytes, (err) => (err ? reject(err) : resolve()));
    });
  }

  /** Wait for n bytes; throws if the server closes or the deadline passes. */
  async read(n: number, timeoutMs: number): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs;
    while (this.buffered.length < n) {
      if (this.closed) throw new Error(`connection closed after ${this.buffered.length} of ${n} bytes`);
      if (!(await this.waitForEvent(deadline))) throw new Error(`timed out waiting for ${n} bytes`);
    }
    const head = this.buffered.subarray(0, n);
    this.buffered = this.buffered.subarray(n);
    return head;
  }

  /** True when the server closed the connection before the deadline. Collects what it sent meanwhile. */
  async waitClosed(timeoutMs: number): Promise<{ closed: boolean; received: Buffer }> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (!(await this.waitForEvent(deadline))) break;
    }
    const received = this.buffered;
    this.buffered = Buffer.alloc(0);
    return { closed: this.closed, received };
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Read the server greeting and check its magics. */
  async readGreeting(timeoutMs: number): Promise<number> {
    const greeting = await this.read(GREETING_BYTES, timeoutMs);
    if (!greeting.subarray(0, 8).equals(NBD_MAGIC) || !greeting.subarray(8, 16).equals(IHAVEOPT)) {
      throw new Error(`bad greeting ${greeting.toString('hex')}`);
    }
    return greeting.readUInt16BE(16);
  }

  async readOptionReply(timeoutMs: number): Promise<OptionReply> {
    const header = await this.read(20, timeoutMs);
    if (header.readBigUInt64BE(0) !== OPTION_REPLY_MAGIC) throw new Error(`bad option reply magic ${header.toString('hex')}`);
    const length = header.readUInt32BE(16);
    if (length > 1024 * 1024) throw new Error(`option reply of ${length} bytes`);
    return { option: header.readUInt32BE(8), replyType: header.readUInt32BE(12), data: await this.read(length, timeoutMs) };
  }

  /** Client flags + NBD_OPT_GO(name) until NBD_REP_ACK; throws on an error reply. */
  async handshakeGo(exportName: string, timeoutMs: number): Promise<void> {
    await this.readGreeting(timeoutMs);
    this.write(u32(CLIENT_FLAGS));
    this.write(encodeOption(NBD_OPT_GO, encodeGoData(exportName)));
    for (;;) {
      const reply = await this.readOptionReply(timeoutMs);
      if ((reply.replyType & NBD_REP_FLAG_ERROR) !== 0) throw new Error(`OPT_GO refused: reply type 0x${reply.replyType.toString(16)}`);
      if (reply.replyType === NBD_REP_ACK) return;
    }
  }

  private wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
  }

  private waitForEvent(deadline: number): Promise<boolean> {
    const remainingMs = deadline - Date.now();
    if (remainingMs <= 0) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        resolve(false);
      }, remainingMs);
      this.waiter = () => {
        clearTimeout(timer);
        resolve(true);
      };
    });
  }
}

export function u32(value: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeUInt32BE(value >>> 0);
  return buffer;
}

/** An option header (`IHAVEOPT`, option, length) followed by data; length may lie. */
export function encodeOption(option: number, data: Buffer, declaredLength = data.length): Buffer {
  const header = Buffer.alloc(16);
  IHAVEOPT.copy(header, 0);
  header.writeUInt32BE(option, 8);
  header.writeUInt32BE(declaredLength >>> 0, 12);
  return Buffer.concat([header, data]);
}

export function encodeGoData(exportName: string): Buffer {
  const name = Buffer.from(exportName, 'utf8');
  return Buffer.concat([u32(name.length), name, Buffer.from([0, 0])]);
}

export function encodeRequest(type: number, cookie: bigint, offset: bigint, length: number, flags = 0): Buffer {
  const request = Buffer.alloc(28);
  request.writeUInt32BE(REQUEST_MAGIC, 0);
  request.writeUInt16BE(flags, 4);
  request.writeUInt16BE(type, 6);
  request.writeBigUInt64BE(cookie, 8);
  request.writeBigUInt64BE(offset, 16);
  request.writeUInt32BE(length, 24);
  return request;
}
