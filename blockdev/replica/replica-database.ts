/**
 * What the replica layer keeps in its `level` sublevel. The daemon creates it
 * with exactly:
 *
 *     db.sublevel<string, Buffer>('replica', { valueEncoding: 'buffer' })
 *
 * | key                          | value                                              |
 * | ---------------------------- | -------------------------------------------------- |
 * | `gen!<volumeId>`             | u64: highest generation seen (invariant 3)         |
 * | `reg!<volumeId>!<region>`    | u64 change seq + u8 active (activity log, invariant 4) |
 * | `mark!<volumeId>`            | u64: highest dirty marker handed out               |
 *
 * `<region>` is 8 hex digits so keys sort by offset. Volume ids never
 * contain '!' (common/volume-name.ts, pool VOLUME_ID_PATTERN).
 */
export interface ReplicaDatabase {
  get(key: string): Promise<Buffer | undefined>;
  batch(operations: ReplicaBatchOperation[], options: { sync: boolean; valueEncoding: 'buffer' }): Promise<void>;
  iterator(options: { gte: string; lt: string }): AsyncIterable<[string, Buffer]>;
}

export type ReplicaBatchOperation = { type: 'put'; key: string; value: Buffer } | { type: 'del'; key: string };

export const SYNC_WRITE = { sync: true, valueEncoding: 'buffer' } as const;
export const LAZY_WRITE = { sync: false, valueEncoding: 'buffer' } as const;

export function generationKey(volumeId: string): string {
  return `gen!${volumeId}`;
}

export function regionKeyPrefix(volumeId: string): string {
  return `reg!${volumeId}!`;
}

export function regionKey(volumeId: string, region: number): string {
  return `${regionKeyPrefix(volumeId)}${region.toString(16).padStart(8, '0')}`;
}

export function markerKey(volumeId: string): string {
  return `mark!${volumeId}`;
}

export function encodeU64(value: number): Buffer {
  const bytes = Buffer.alloc(8);
  bytes.writeBigUInt64BE(BigInt(value));
  return bytes;
}

/** Undefined when the stored value is not a u64 below 2^53 (the caller reports corruption). */
export function decodeU64(bytes: Buffer): number | undefined {
  if (bytes.length < 8) return undefined;
  const value = bytes.readBigUInt64BE(0);
  return value > BigInt(Number.MAX_SAFE_INTEGER) ? undefined : Number(value);
}
