/**
 * The soak's 4 KiB block format, TypeScript side (the python worker in
 * soak-worker-py.ts writes and decodes the same): the 16-byte stamp
 * `<QQ` (version, block index, little-endian) repeated over the block.
 * Zeroes are version 0. Used to check replicas read offline.
 */
import type { BlockReading } from './soak-model.js';

export const SOAK_BLOCK_BYTES = 4096;
const STAMP_BYTES = 16;
const SECTOR_BYTES = 512;

export function stampBlock(version: number, block: number): Buffer {
  const stamp = Buffer.alloc(STAMP_BYTES);
  stamp.writeBigUInt64LE(BigInt(version), 0);
  stamp.writeBigUInt64LE(BigInt(block), 8);
  return Buffer.alloc(SOAK_BLOCK_BYTES, stamp);
}

/** What one block holds: a whole stamp of this block, zeroes, or garbage (named by its sectors' stamps). */
export function decodeBlock(data: Buffer, block: number): BlockReading {
  if (data.length !== SOAK_BLOCK_BYTES) throw new RangeError(`a soak block is ${SOAK_BLOCK_BYTES} bytes, got ${data.length}`);
  if (data.every((byte) => byte === 0)) return { kind: 'version', version: 0 };
  const version = Number(data.readBigUInt64LE(0));
  const owner = Number(data.readBigUInt64LE(8));
  if (owner === block && data.equals(stampBlock(version, block))) return { kind: 'version', version };
  const stamps = new Set<string>();
  for (let offset = 0; offset < SOAK_BLOCK_BYTES; offset += SECTOR_BYTES) {
    stamps.add(`${data.readBigUInt64LE(offset)}@${data.readBigUInt64LE(offset + 8)}`);
  }
  return { kind: 'garbage', detail: `sector stamps ${[...stamps].slice(0, 8).join(', ')}` };
}

/** The worker's JSON answer for one block (a version, or "garbage: …") as a reading. */
export function readingFromWorker(value: number | string): BlockReading {
  if (typeof value === 'number') return { kind: 'version', version: value };
  return { kind: 'garbage', detail: value.replace(/^garbage: /, '') };
}
