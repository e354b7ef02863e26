/**
 * Keys of the Raft state inside the sublevel the caller hands in (so the
 * daemon's single LevelDB can host it next to the pool metadata):
 *
 *   format          → u32 layout version
 *   hard-state      → checksummed HardState record
 *   snapshot-meta   → checksummed SnapshotMetadata (+ length and CRC of the data)
 *   snapshot-data   → the state-machine image
 *   entry/<index>   → checksummed Entry, index as 16 hex digits so that the
 *                     byte order of keys is the numeric order of indices
 */
export const FORMAT_KEY = 'format';
export const HARD_STATE_KEY = 'hard-state';
export const SNAPSHOT_META_KEY = 'snapshot-meta';
export const SNAPSHOT_DATA_KEY = 'snapshot-data';
export const ENTRY_KEY_PREFIX = 'entry/';
export const LAYOUT_VERSION = 1;

const INDEX_HEX_DIGITS = 16;

export function entryKey(index: number): string {
  return ENTRY_KEY_PREFIX + index.toString(16).padStart(INDEX_HEX_DIGITS, '0');
}

/** Parses an entry key; null if the key is not one. */
export function indexOfEntryKey(key: string): number | null {
  if (!key.startsWith(ENTRY_KEY_PREFIX) || key.length !== ENTRY_KEY_PREFIX.length + INDEX_HEX_DIGITS) return null;
  const index = Number.parseInt(key.slice(ENTRY_KEY_PREFIX.length), 16);
  return Number.isSafeInteger(index) ? index : null;
}

/** Range bounds (for iterators and clear) covering entries in [fromIndex, toIndexExclusive). */
export function entryRange(fromIndex: number, toIndexExclusive?: number): { gte: string; lt: string } {
  return {
    gte: entryKey(fromIndex),
    lt: toIndexExclusive === undefined ? ENTRY_KEY_PREFIX + '\uffff' : entryKey(toIndexExclusive),
  };
}
