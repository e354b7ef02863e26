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
 * | `unclean!<volumeId>`         | u8 1: may lack writes it acknowledged (issue 7)    |
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

export const GENERATION_KEY_PREFIX = 'gen!';

export function generationKey(volumeId: string): string {
  return `${GENERATION_KEY_PREFIX}${volumeId}`;
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

/**
 * Set for every volume held here when the node starts after an unclean end
 * (crash, power loss), cleared once the owner made the replica identical to
 * a good source (MARK_REPAIRED): the replica is then no failover source
 * while another candidate is left (daemon/volume/failover-resync.ts).
 */
export function uncleanKey(volumeId: string): string {
  return `unclean!${volumeId}`;
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
