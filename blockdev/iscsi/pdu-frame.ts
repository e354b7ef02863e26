import { BHS_BYTES } from './iscsi-constants.js';
import { crc32c, encodeDigest } from './crc32c.js';

/**
 * The shape every PDU shares (RFC 7143 §11.2): a 48-byte Basic Header
 * Segment, optional Additional Header Segments, an optional header digest,
 * a data segment padded to 4 bytes and an optional data digest.
 */

export interface RawPdu {
  /** The 48-byte BHS. */
  readonly bhs: Buffer;
  /** Additional header segments (TotalAHSLength * 4 bytes). */
  readonly ahs: Buffer;
  /** The data segment without padding. */
  readonly data: Buffer;
}

/** A target PDU ready to frame: BHS with every field but DataSegmentLength set. */
export interface OutgoingPdu {
  readonly bhs: Buffer;
  readonly data?: Buffer;
}

export interface DigestSettings {
  readonly header: boolean;
  readonly data: boolean;
}

export const NO_DIGESTS: DigestSettings = { header: false, data: false };

export function opcodeOf(bhs: Buffer): number {
  return (bhs[0] ?? 0) & 0x3f;
}

/** §11.2.1.2: the I bit, byte 0 bit 6. */
export function isImmediate(bhs: Buffer): boolean {
  return ((bhs[0] ?? 0) & 0x40) !== 0;
}

/** §11.2.1.3: the F bit, byte 1 bit 7. */
export function isFinal(bhs: Buffer): boolean {
  return ((bhs[1] ?? 0) & 0x80) !== 0;
}

export function dataSegmentLengthOf(bhs: Buffer): number {
  return ((bhs[5] ?? 0) << 16) | ((bhs[6] ?? 0) << 8) | (bhs[7] ?? 0);
}

export function totalAhsBytesOf(bhs: Buffer): number {
  return (bhs[4] ?? 0) * 4;
}

export function paddingOf(lengthBytes: number): number {
  return (4 - (lengthBytes % 4)) % 4;
}

const PADDING = Buffer.alloc(4);

/**
 * The wire bytes of one PDU as a list of buffers for one writev. Sets
 * DataSegmentLength from `data`; adds padding and the negotiated digests
 * (§11.2.4: the data digest covers the data and its padding).
 */
export function framePdu(pdu: OutgoingPdu, digests: DigestSettings): Buffer[] {
  const data = pdu.data;
  pdu.bhs.writeUIntBE(data?.length ?? 0, 5, 3);
  const parts: Buffer[] = [pdu.bhs];
  if (digests.header) {
    parts.push(encodeDigest(crc32c(pdu.bhs)));
  }
  if (data !== undefined && data.length > 0) {
    parts.push(data);
    const padding = PADDING.subarray(0, paddingOf(data.length));
    if (padding.length > 0) {
      parts.push(padding);
    }
    if (digests.data) {
      parts.push(encodeDigest(crc32c(data, padding)));
    }
  }
  return parts;
}

/**
 * A fresh zeroed BHS with opcode and flags byte set. allocUnsafe + fill: a
 * slice of Node's shared pool instead of one ArrayBuffer per reply (perf:
 * per-PDU ArrayBuffers were a visible share of GC at 4k qd32).
 */
export function newBhs(opcode: number, flags: number): Buffer {
  const bhs = Buffer.allocUnsafe(BHS_BYTES).fill(0);
  bhs[0] = opcode & 0x3f;
  bhs[1] = flags & 0xff;
  return bhs;
}

/**
 * SAM-5 §4.6 LUN: peripheral (method 0) or flat (method 1) single-level
 * addressing; anything else decodes to a number no LUN of ours has.
 */
export function decodeLun(lun: Buffer, offset = 0): number {
  const first = lun[offset] ?? 0;
  const second = lun[offset + 1] ?? 0;
  const method = first >> 6;
  // Two reads, no view and no closure: this runs for every PDU.
  if (lun.readUInt16BE(offset + 2) !== 0 || lun.readUInt32BE(offset + 4) !== 0) {
    return 0x7fffffff;
  }
  if (method === 0) {
    return (first << 8) | second;
  }
  if (method === 1) {
    return ((first & 0x3f) << 8) | second;
  }
  return 0x7fffffff;
}

export function encodeLun(lun: number, target: Buffer, offset: number): void {
  target.fill(0, offset, offset + 8);
  if (lun < 256) {
    target[offset + 1] = lun;
  } else {
    target[offset] = 0x40 | ((lun >> 8) & 0x3f);
    target[offset + 1] = lun & 0xff;
  }
}
