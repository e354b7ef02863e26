import { PlinthError } from '../../common/plinth-error.js';

/**
 * The volatile write cache of a simulated disk (issue 7, power loss): a pure
 * model of what a drive (or the page cache of a host that loses power) holds
 * between a write and the next sync. No I/O, no clock: the shell
 * (power-loss-disk.ts) reads the file, lets this overlay it, and writes to
 * the file what sync(), a write-back or a power cut hands back.
 *
 *   - write(): the bytes are kept here; reads see them (as a page cache would).
 *   - takeForSync(): every cached write, oldest first, to be written to the
 *     file before the fdatasync. Afterwards the cache is empty: synced data
 *     is on the platter and survives every cut.
 *   - powerCut(random): the power fails. Each cached write independently
 *     either never reached the platter, reached it whole, or was torn: each
 *     of its 512-byte sectors landed or not. A sector is atomic (the
 *     guarantee drives give), so a read after the cut returns, per sector,
 *     the bytes of one write or of the synced state — never a mix inside
 *     one sector of a single write. Writes that land are applied oldest
 *     first. Deterministic for a given `random` sequence.
 *   - the cache is bounded (`maxCachedBytes`): past it, the oldest writes are
 *     written back on their own, as a drive's cache does; that is only ever
 *     "more survived", which a power cut allows.
 */

export const SECTOR_BYTES = 512;
/** Granularity of the index used to find the cached writes a read overlaps. */
const BUCKET_BYTES = 64 * 1024;

/** Bytes to put at `position` of the file. */
export interface FileWrite {
  readonly position: number;
  readonly data: Buffer;
}

/** How a power cut treats each cached write: probabilities, the rest is "lost". */
export interface PowerCutOdds {
  /** Reached the platter whole. */
  readonly landed: number;
  /** Torn: each of its sectors reached the platter with probability 1/2. */
  readonly torn: number;
}

export const DEFAULT_POWER_CUT_ODDS: PowerCutOdds = { landed: 1 / 3, torn: 1 / 3 };

export interface VolatileWriteCacheOptions {
  /** Cached bytes above which the oldest writes are written back (required: a limit on everything). */
  readonly maxCachedBytes: number;
  readonly odds?: PowerCutOdds;
}

/** What a power cut did, for logs and tests. */
export interface PowerCutOutcome {
  readonly writes: readonly FileWrite[];
  readonly lost: number;
  readonly landed: number;
  readonly torn: number;
}

interface CachedWrite {
  readonly sequence: number;
  readonly position: number;
  readonly data: Buffer;
}

export class VolatileWriteCache {
  readonly #maxCachedBytes: number;
  readonly #odds: PowerCutOdds;
  /** Oldest first. */
  #writes: CachedWrite[] = [];
  /** Bucket index → the cached writes touching it, oldest first. */
  #buckets = new Map<number, CachedWrite[]>();
  #cachedBytes = 0;
  #nextSequence = 0;

  constructor(options: VolatileWriteCacheOptions) {
    if (!Number.isSafeInteger(options.maxCachedBytes) || options.maxCachedBytes <= 0) {
      throw new PlinthError('INVALID_ARGUMENT', `volatile write cache: maxCachedBytes must be a positive integer, got ${options.maxCachedBytes}`, {
        maxCachedBytes: options.maxCachedBytes,
      });
    }
    this.#maxCachedBytes = options.maxCachedBytes;
    this.#odds = options.odds ?? DEFAULT_POWER_CUT_ODDS;
  }

  get cachedBytes(): number {
    return this.#cachedBytes;
  }

  get cachedWrites(): number {
    return this.#writes.length;
  }

  /**
   * Cache `chunks` (lengthBytes in all) at `position`; the bytes are copied.
   * Returns the oldest writes the bounded cache wrote back to make room:
   * the caller puts them in the file now, in order.
   */
  write(chunks: readonly Buffer[], lengthBytes: number, position: number): FileWrite[] {
    assertRange(position, lengthBytes);
    if (lengthBytes === 0) return [];
    const cached: CachedWrite = { sequence: this.#nextSequence, position, data: Buffer.concat(chunks, lengthBytes) };
    this.#nextSequence += 1;
    this.#writes.push(cached);
    this.#cachedBytes += lengthBytes;
    for (let bucket = firstBucket(cached); bucket <= lastBucket(cached); bucket += 1) {
      const list = this.#buckets.get(bucket);
      if (list === undefined) this.#buckets.set(bucket, [cached]);
      else list.push(cached);
    }
    return this.#writeBackOverflow();
  }

  /** Lay the cached bytes of [position, +lengthBytes) over `target[targetOffset..]`, which holds the file's bytes. */
  overlay(target: Buffer, targetOffset: number, lengthBytes: number, position: number): void {
    assertRange(position, lengthBytes);
    if (lengthBytes === 0 || this.#writes.length === 0) return;
    const end = position + lengthBytes;
    const first = Math.floor(position / BUCKET_BYTES);
    const last = Math.floor((end - 1) / BUCKET_BYTES);
    const hits: CachedWrite[] = [];
    for (let bucket = first; bucket <= last; bucket += 1) {
      for (const cached of this.#buckets.get(bucket) ?? []) {
        // A write spanning several buckets is taken once: from the first bucket both share.
        if (Math.max(firstBucket(cached), first) === bucket && cached.position < end && cached.position + cached.data.length > position) {
          hits.push(cached);
        }
      }
    }
    hits.sort((a, b) => a.sequence - b.sequence);
    for (const cached of hits) {
      const from = Math.max(position, cached.position);
      const to = Math.min(end, cached.position + cached.data.length);
      cached.data.copy(target, targetOffset + (from - position), from - cached.position, to - cached.position);
    }
  }

  /** Every cached write, oldest first, for the file before an fdatasync; the cache is emptied. */
  takeForSync(): FileWrite[] {
    const writes = this.#writes.map(({ position, data }) => ({ position, data }));
    this.#clear();
    return writes;
  }

  /**
   * The power fails: decide, with `random` (uniform in [0, 1)), which cached
   * writes reached the platter and which of their sectors. Returns what to
   * apply to the file, oldest first; the cache is emptied.
   */
  powerCut(random: () => number): PowerCutOutcome {
    const writes: FileWrite[] = [];
    let lost = 0;
    let landed = 0;
    let torn = 0;
    for (const cached of this.#writes) {
      const fate = random();
      if (fate < this.#odds.landed) {
        landed += 1;
        writes.push({ position: cached.position, data: cached.data });
      } else if (fate < this.#odds.landed + this.#odds.torn) {
        torn += 1;
        writes.push(...tornSectors(cached, random));
      } else {
        lost += 1;
      }
    }
    this.#clear();
    return { writes, lost, landed, torn };
  }

  #writeBackOverflow(): FileWrite[] {
    const writtenBack: FileWrite[] = [];
    while (this.#cachedBytes > this.#maxCachedBytes && this.#writes.length > 1) {
      const oldest = this.#writes.shift();
      if (oldest === undefined) break;
      for (let bucket = firstBucket(oldest); bucket <= lastBucket(oldest); bucket += 1) {
        // The oldest write of all is the oldest of every bucket it touches.
        const list = this.#buckets.get(bucket);
        list?.shift();
        if (list?.length === 0) this.#buckets.delete(bucket);
      }
      this.#cachedBytes -= oldest.data.length;
      writtenBack.push({ position: oldest.position, data: oldest.data });
    }
    return writtenBack;
  }

  #clear(): void {
    this.#writes = [];
    this.#buckets = new Map();
    this.#cachedBytes = 0;
  }
}

/** The runs of a write's sectors that landed; sectors are aligned to the disk (position 0), not to the write. */
function tornSectors(cached: CachedWrite, random: () => number): FileWrite[] {
  const runs: FileWrite[] = [];
  const end = cached.position + cached.data.length;
  let runStart: number | null = null;
  for (let sectorStart = cached.position - (cached.position % SECTOR_BYTES); sectorStart < end; sectorStart += SECTOR_BYTES) {
    const from = Math.max(sectorStart, cached.position);
    const to = Math.min(sectorStart + SECTOR_BYTES, end);
    const landed = random() < 0.5;
    if (landed && runStart === null) runStart = from;
    if (!landed && runStart !== null) {
      runs.push(slice(cached, runStart, from));
      runStart = null;
    }
    if (to === end && runStart !== null) runs.push(slice(cached, runStart, end));
  }
  return runs;
}

function slice(cached: CachedWrite, from: number, to: number): FileWrite {
  return { position: from, data: cached.data.subarray(from - cached.position, to - cached.position) };
}

function firstBucket(cached: CachedWrite): number {
  return Math.floor(cached.position / BUCKET_BYTES);
}

function lastBucket(cached: CachedWrite): number {
  return Math.floor((cached.position + cached.data.length - 1) / BUCKET_BYTES);
}

function assertRange(position: number, lengthBytes: number): void {
  if (!Number.isSafeInteger(position) || position < 0 || !Number.isSafeInteger(lengthBytes) || lengthBytes < 0) {
    throw new PlinthError('INTERNAL', `volatile write cache: bad range ${position}+${lengthBytes}`, { position, lengthBytes });
  }
}
