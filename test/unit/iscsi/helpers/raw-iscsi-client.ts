import { connect, type Socket } from 'node:net';
import { type DigestSettings, NO_DIGESTS, type OutgoingPdu, type RawPdu } from '../../../../blockdev/iscsi/pdu-frame.js';
import { PduReader } from '../../../../blockdev/iscsi/pdu-reader.js';
import { decodeTextPairs } from '../../../../blockdev/iscsi/text-keys.js';
import { loginRequest, wire } from './initiator-pdus.js';

/**
 * A byte-level iSCSI initiator for tests: sends the PDUs it is given and
 * reads target PDUs with the same framing code (PduReader works both ways).
 * Every read is bounded in time.
 */
export class RawIscsiClient {
  private readonly socket: Socket;
  private readonly reader = new PduReader({ maxDataSegmentBytes: 16 * 1024 * 1024 });
  private waiter: (() => void) | undefined;
  private closedFlag = false;
  lastError: Error | undefined;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.reader.push(chunk);
      this.waiter?.();
    });
    socket.on('close', () => {
      this.closedFlag = true;
      this.waiter?.();
    });
    // A reset by the target is what several tests provoke; keep it for inspection rather than crash.
    socket.on('error', (error) => {
      this.lastError = error;
    });
  }

  static open(port: number): Promise<RawIscsiClient> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port }, () => resolve(new RawIscsiClient(socket)));
      socket.once('error', reject);
    });
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  private digests: DigestSettings = NO_DIGESTS;

  /** Frame and read with digests from now on (after a login that negotiated them). */
  useDigests(digests: DigestSettings): void {
    this.digests = digests;
    this.reader.setDigests(digests);
  }

  send(pdu: OutgoingPdu): void {
    this.socket.write(wire(pdu, this.digests));
  }

  sendRaw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Stop taking bytes from the kernel: the target's replies pile up in the socket buffers. */
  pauseReading(): void {
    this.socket.pause();
  }

  resumeReading(): void {
    this.socket.resume();
  }

  /** The next target PDU; rejects after `timeoutMs` or when the connection closed first. */
  async read(timeoutMs = 3000): Promise<RawPdu> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const result = this.reader.next();
      if (result?.kind === 'pdu') return result.pdu;
      if (result !== undefined) throw new Error(`unreadable target PDU: ${result.kind}`);
      if (this.closedFlag) throw new Error('connection closed');
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting for a PDU');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = undefined;
    }
  }

  /** True if nothing arrives within `ms` (the connection may stay open). */
  async silentFor(ms: number): Promise<boolean> {
    try {
      await this.read(ms);
      return false;
    } catch (error) {
      return error instanceof Error && error.message.startsWith('timed out');
    }
  }

  /** Resolves true when the target closed the connection, false on timeout. */
  waitClosed(timeoutMs = 3000): Promise<boolean> {
    if (this.closedFlag) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(this.closedFlag), timeoutMs);
      this.socket.once('close', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  /** A one-PDU login straight to full feature phase (no CHAP); returns the final response. */
  async login(fields: { target?: string; isid?: string; initiator?: string; cmdSN?: number; extra?: { key: string; value: string }[] }): Promise<RawPdu> {
    const pairs = [
      { key: 'InitiatorName', value: fields.initiator ?? 'iqn.2026-01.test:raw' },
      ...(fields.target === undefined ? [{ key: 'SessionType', value: 'Discovery' }] : [{ key: 'TargetName', value: fields.target }]),
      { key: 'AuthMethod', value: 'None' },
      ...(fields.extra ?? []),
    ];
    this.send(loginRequest({ transit: true, csg: 0, nsg: 3, pairs, isid: fields.isid ?? '400001370000', cmdSN: fields.cmdSN ?? 1 }));
    return this.read();
  }
}

export function loginStatusOf(pdu: RawPdu): number {
  return pdu.bhs.readUInt16BE(36);
}

export function textOf(pdu: RawPdu): Map<string, string> {
  const pairs = decodeTextPairs(pdu.data);
  if (pairs instanceof Error) throw pairs;
  return new Map(pairs.map((pair) => [pair.key, pair.value]));
}
