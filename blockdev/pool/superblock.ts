import { PlinthError } from '../../common/plinth-error.js';
import { crc32 } from './checksum.js';

/**
 * The superblock at offset 0 of every pool disk: pure encode/decode.
 *
 * Layout (little-endian, SUPERBLOCK_BYTES long):
 *
 * | offset | size | field                                  |
 * | -----: | ---: | -------------------------------------- |
 * |      0 |    8 | magic "PLNTHDSK"                        |
 * |      8 |    4 | format version (SUPERBLOCK_VERSION)     |
 * |     12 |    4 | superblock length in bytes              |
 * |     16 |   16 | pool UUID                               |
 * |     32 |   16 | disk UUID                               |
 * |     48 |    4 | extent size in bytes                    |
 * |     52 |    4 | disk index within the pool              |
 * |     56 |    8 | capacity in bytes                       |
 * |     64 |   60 | reserved, zero                          |
 * |    124 |    4 | CRC-32 of bytes [0, 124)                |
 *
 * The whole first extent of a disk is reserved for it (data extents start at
 * index 1), so no data write can ever land on the superblock.
 */

export const SUPERBLOCK_MAGIC = Buffer.from('PLNTHDSK', 'latin1');
export const SUPERBLOCK_VERSION = 1;
export const SUPERBLOCK_BYTES = 128;
const CHECKSUM_OFFSET = SUPERBLOCK_BYTES - 4;

/**
 * How many leading bytes must be zero for a disk without our magic to count
 * as blank. 128 KiB covers the signatures that live near the start of a
 * device (MBR/GPT, LVM label, ext2-4, XFS, md 1.2 at 4 KiB, btrfs at 64 KiB),
 * so a disk holding someone else's data is refused instead of overwritten.
 */
export const PROBE_BYTES = 128 * 1024;

export interface Superblock {
  readonly poolId: string;
  readonly diskId: string;
  readonly extentSizeBytes: number;
  readonly diskIndex: number;
  readonly capacityBytes: number;
}

export type ProbeResult =
  | { readonly kind: 'blank' }
  | { readonly kind: 'plinth'; readonly superblock: Superblock };

export function encodeSuperblock(superblock: Superblock): Buffer {
  const bytes = Buffer.alloc(SUPERBLOCK_BYTES);
  SUPERBLOCK_MAGIC.copy(bytes, 0);
  bytes.writeUInt32LE(SUPERBLOCK_VERSION, 8);
  bytes.writeUInt32LE(SUPERBLOCK_BYTES, 12);
  uuidToBytes(superblock.poolId).copy(bytes, 16);
  uuidToBytes(superblock.diskId).copy(bytes, 32);
  bytes.writeUInt32LE(superblock.extentSizeBytes, 48);
  bytes.writeUInt32LE(superblock.diskIndex, 52);
  bytes.writeBigUInt64LE(BigInt(superblock.capacityBytes), 56);
  bytes.writeUInt32LE(crc32(bytes.subarray(0, CHECKSUM_OFFSET)), CHECKSUM_OFFSET);
  return bytes;
}

/**
 * Classify the first bytes of a disk: blank (all zero), ours (decoded), or
 * refused. Throws DISK_FOREIGN for anything that is neither zero nor our
 * magic, DISK_CORRUPT for our magic with a bad version or checksum.
 * `source` names the disk in error messages.
 */
export function probeSuperblock(head: Buffer, source: string): ProbeResult {
  if (head.length >= SUPERBLOCK_MAGIC.length && head.subarray(0, SUPERBLOCK_MAGIC.length).equals(SUPERBLOCK_MAGIC)) {
    return { kind: 'plinth', superblock: decodeSuperblock(head, source) };
  }
  const firstNonZero = head.findIndex((byte) => byte !== 0);
  if (firstNonZero === -1) {
    return { kind: 'blank' };
  }
  throw new PlinthError(
    'DISK_FOREIGN',
    `disk ${source} holds data that is not a Plinth superblock (non-zero byte at offset ${firstNonZero}); refusing to use it. Wipe it explicitly if it is really free.`,
    { path: source, offset: firstNonZero },
  );
}

export function decodeSuperblock(head: Buffer, source: string): Superblock {
  if (head.length < SUPERBLOCK_BYTES || !head.subarray(0, SUPERBLOCK_MAGIC.length).equals(SUPERBLOCK_MAGIC)) {
    throw corrupt(source, 'superblock magic missing or truncated');
  }
  const version = head.readUInt32LE(8);
  if (version !== SUPERBLOCK_VERSION) {
    throw corrupt(source, `unknown superblock format version ${version} (this build knows ${SUPERBLOCK_VERSION})`);
  }
  const length = head.readUInt32LE(12);
  const storedChecksum = head.readUInt32LE(CHECKSUM_OFFSET);
  const actualChecksum = crc32(head.subarray(0, CHECKSUM_OFFSET));
  if (length !== SUPERBLOCK_BYTES || storedChecksum !== actualChecksum) {
    throw corrupt(source, `superblock checksum mismatch (stored ${hex(storedChecksum)}, computed ${hex(actualChecksum)})`);
  }
  const capacityBytes = head.readBigUInt64LE(56);
  if (capacityBytes > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw corrupt(source, `superblock capacity ${capacityBytes} is out of range`);
  }
  return {
    poolId: bytesToUuid(head.subarray(16, 32)),
    diskId: bytesToUuid(head.subarray(32, 48)),
    extentSizeBytes: head.readUInt32LE(48),
    diskIndex: head.readUInt32LE(52),
    capacityBytes: Number(capacityBytes),
  };
}

function corrupt(source: string, reason: string): PlinthError {
  return new PlinthError('DISK_CORRUPT', `disk ${source}: ${reason}`, { path: source, reason });
}

function hex(value: number): string {
  return `0x${value.toString(16).padStart(8, '0')}`;
}

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function uuidToBytes(uuid: string): Buffer {
  if (!UUID_PATTERN.test(uuid)) {
    throw new PlinthError('INVALID_ARGUMENT', `not a lowercase UUID: "${uuid}"`, { uuid });
  }
  return Buffer.from(uuid.replaceAll('-', ''), 'hex');
}

export function bytesToUuid(bytes: Buffer): string {
  const text = bytes.toString('hex');
  return `${text.slice(0, 8)}-${text.slice(8, 12)}-${text.slice(12, 16)}-${text.slice(16, 20)}-${text.slice(20, 32)}`;
}
