/**
 * The byte regions a replica missed while it was out of the in-sync set, so
 * that a short outage is repaired by copying only what changed (issue 4
 * "Delta resync"). Bounded: past `maxRegions` the two closest regions merge,
 * which over-approximates (copies a little more) but never forgets a byte.
 */

export interface ByteRegion {
  readonly offset: number;
  readonly lengthBytes: number;
}

/** Regions to copy, or every byte of the volume. */
export type RegionSet = readonly ByteRegion[] | 'all';

interface Interval {
  start: number;
  end: number;
}

export class DirtyRegions {
  private readonly maxRegions: number;
  private intervals: Interval[] = [];
  private everything = false;

  constructor(maxRegions = 1024) {
    this.maxRegions = Math.max(1, maxRegions);
  }

  /** Start from "unknown": a replica whose history this controller never saw. */
  static all(maxRegions?: number): DirtyRegions {
    const regions = new DirtyRegions(maxRegions);
    regions.markAll();
    return regions;
  }

  add(offset: number, lengthBytes: number): void {
    if (this.everything || lengthBytes <= 0) return;
    const start = offset;
    const end = offset + lengthBytes;
    const kept: Interval[] = [];
    const merged: Interval = { start, end };
    for (const interval of this.intervals) {
      // Touching intervals merge too: fewer, longer copies.
      if (interval.end < merged.start || interval.start > merged.end) {
        kept.push(interval);
      } else {
        merged.start = Math.min(merged.start, interval.start);
        merged.end = Math.max(merged.end, interval.end);
      }
    }
    kept.push(merged);
    kept.sort((a, b) => a.start - b.start);
    this.intervals = kept;
    while (this.intervals.length > this.maxRegions) this.mergeClosestPair();
  }

  markAll(): void {
    this.everything = true;
    this.intervals = [];
  }

  isEmpty(): boolean {
    return !this.everything && this.intervals.length === 0;
  }

  snapshot(): RegionSet {
    if (this.everything) return 'all';
    return this.intervals.map((interval) => ({ offset: interval.start, lengthBytes: interval.end - interval.start }));
  }

  clear(): void {
    this.everything = false;
    this.intervals = [];
  }

  private mergeClosestPair(): void {
    let bestIndex = 0;
    let bestGap = Number.POSITIVE_INFINITY;
    for (let index = 0; index + 1 < this.intervals.length; index += 1) {
      const left = this.intervals[index];
      const right = this.intervals[index + 1];
      if (left === undefined || right === undefined) continue;
      const gap = right.start - left.end;
      if (gap < bestGap) {
        bestGap = gap;
        bestIndex = index;
      }
    }
    const left = this.intervals[bestIndex];
    const right = this.intervals[bestIndex + 1];
    if (left === undefined || right === undefined) return;
    this.intervals.splice(bestIndex, 2, { start: left.start, end: right.end });
  }
}

/** Expand a region set to concrete regions for a device of `sizeBytes`. */
export function resolveRegions(regions: RegionSet, sizeBytes: number): ByteRegion[] {
  if (regions === 'all') return sizeBytes > 0 ? [{ offset: 0, lengthBytes: sizeBytes }] : [];
  return regions.filter((region) => region.lengthBytes > 0);
}

/** Sorted, with overlapping and touching regions joined. */
export function mergeByteRegions(regions: readonly ByteRegion[]): ByteRegion[] {
  const sorted = regions.filter((region) => region.lengthBytes > 0).sort((a, b) => a.offset - b.offset);
  const merged: Interval[] = [];
  for (const region of sorted) {
    const last = merged[merged.length - 1];
    if (last !== undefined && region.offset <= last.end) last.end = Math.max(last.end, region.offset + region.lengthBytes);
    else merged.push({ start: region.offset, end: region.offset + region.lengthBytes });
  }
  return merged.map((interval) => ({ offset: interval.start, lengthBytes: interval.end - interval.start }));
}
