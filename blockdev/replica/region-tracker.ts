/**
 * Pure per-volume bookkeeping of written regions (fixed slices of
 * `regionSizeBytes`), behind two mechanisms of ARCHITECTURE invariant 4:
 *
 * - Activity log: a region is *active* from before a write to it is
 *   acknowledged until it has been idle across two completed flushes. A new
 *   owner after an unclean failover copies the active regions of every
 *   in-sync replica from its chosen source. Clearing waits for a *second*
 *   flush so that a write still travelling to another replica when the first
 *   flush ran stays covered on this one.
 * - Dirty tracking for delta resync: each region carries the change sequence
 *   of its last activation or clearing. "Changed since marker M" is
 *   `seq > M || active`: an active region may have taken writes at any time.
 *
 * No I/O here: methods return the records the shell (activity-log.ts) must
 * persist; activations durably before the write proceeds.
 */

export interface RegionRecord {
  readonly seq: number;
  readonly active: boolean;
}

interface RegionState {
  seq: number;
  active: boolean;
  inFlight: number;
  /** Flush epoch in which the last write to the region completed. */
  completedEpoch: number;
}

export interface DirtyAnswer {
  readonly markerSeq: number;
  readonly complete: boolean;
  readonly regions: number[];
}

export class RegionTracker {
  readonly regionSizeBytes: number;
  readonly #regions = new Map<number, RegionState>();
  #seq: number;
  /** Incremented when a flush starts; writes completing now belong to this epoch. */
  #epoch = 0;

  /**
   * `loaded`: the durable records; `markerFloor`: the highest marker ever
   * handed out (persisted before it was). Regions found active were possibly
   * written after their record, so they get a fresh sequence.
   */
  constructor(regionSizeBytes: number, loaded: ReadonlyMap<number, RegionRecord>, markerFloor: number) {
    this.regionSizeBytes = regionSizeBytes;
    let seq = markerFloor;
    for (const record of loaded.values()) seq = Math.max(seq, record.seq);
    seq += 1;
    for (const [region, record] of loaded) {
      this.#regions.set(region, { seq: record.active ? seq : record.seq, active: record.active, inFlight: 0, completedEpoch: 0 });
    }
    this.#seq = seq;
  }

  /** Regions touched by [offset, offset + lengthBytes); none for an empty range. */
  regionsOf(offset: number, lengthBytes: number): number[] {
    if (lengthBytes <= 0) return [];
    const first = Math.floor(offset / this.regionSizeBytes);
    const last = Math.floor((offset + lengthBytes - 1) / this.regionSizeBytes);
    const regions: number[] = [];
    for (let region = first; region <= last; region += 1) regions.push(region);
    return regions;
  }

  /** A write to `regions` starts: returns the activations to persist (with sync) before it may proceed. */
  startWrite(regions: readonly number[]): Map<number, RegionRecord> {
    const activations = new Map<number, RegionRecord>();
    for (const region of regions) {
      const state = this.#regions.get(region) ?? { seq: 0, active: false, inFlight: 0, completedEpoch: 0 };
      state.inFlight += 1;
      if (!state.active) {
        this.#seq += 1;
        state.seq = this.#seq;
        state.active = true;
        activations.set(region, { seq: state.seq, active: true });
      }
      this.#regions.set(region, state);
    }
    return activations;
  }

  /**
   * The synchronous fast path of startWrite: when the single region of
   * [offset, +lengthBytes) is already active (nothing to persist), count the
   * write in it and return the region; otherwise change nothing and return
   * undefined. Whether that activation is already durable is the shell's
   * business (activity-log.ts).
   */
  startWriteInActiveRegion(offset: number, lengthBytes: number): number | undefined {
    if (lengthBytes <= 0) return undefined;
    const region = Math.floor(offset / this.regionSizeBytes);
    if (Math.floor((offset + lengthBytes - 1) / this.regionSizeBytes) !== region) return undefined;
    const state = this.#regions.get(region);
    if (state === undefined || !state.active) return undefined;
    state.inFlight += 1;
    return region;
  }

  /** finishWrite for one region (the fast path's counterpart, no array). */
  finishWriteInRegion(region: number): void {
    const state = this.#regions.get(region);
    if (state === undefined || state.inFlight === 0) throw new Error(`region ${region}: write finished that never started`);
    state.inFlight -= 1;
    state.completedEpoch = this.#epoch;
  }

  finishWrite(regions: readonly number[]): void {
    for (const region of regions) {
      const state = this.#regions.get(region);
      if (state === undefined || state.inFlight === 0) throw new Error(`region ${region}: write finished that never started`);
      state.inFlight -= 1;
      state.completedEpoch = this.#epoch;
    }
  }

  /** A flush starts; pass the returned epoch to finishFlush once it completed. */
  startFlush(): number {
    this.#epoch += 1;
    return this.#epoch;
  }

  /**
   * Flush `epoch` completed: regions idle whose last write completed before
   * the previous flush started are cleared; returns the records to persist
   * (without sync: a lost clear only costs a redundant copy).
   */
  finishFlush(epoch: number): Map<number, RegionRecord> {
    const cleared = new Map<number, RegionRecord>();
    for (const [region, state] of this.#regions) {
      if (state.active && state.inFlight === 0 && state.completedEpoch <= epoch - 2) {
        this.#seq += 1;
        state.seq = this.#seq;
        state.active = false;
        cleared.set(region, { seq: state.seq, active: false });
      }
    }
    return cleared;
  }

  /** Active regions in [firstRegion, endRegion), ascending. */
  activeRegions(firstRegion: number, endRegion: number): number[] {
    return this.#select(firstRegion, endRegion, (state) => state.active);
  }

  /** The marker to hand out now; the caller persists it (sync) before handing it out. */
  currentMarker(): number {
    return this.#seq;
  }

  /** Regions in [firstRegion, endRegion) changed since `markerSeq`, ascending. */
  dirtySince(markerSeq: number, firstRegion: number, endRegion: number): DirtyAnswer {
    if (markerSeq > this.#seq) {
      // A marker from the future: this tracker restarted from scratch since; nothing is known.
      return { markerSeq: this.#seq, complete: false, regions: [] };
    }
    const regions = this.#select(firstRegion, endRegion, (state) => state.active || state.seq > markerSeq);
    return { markerSeq: this.#seq, complete: true, regions };
  }

  #select(firstRegion: number, endRegion: number, keep: (state: RegionState) => boolean): number[] {
    const regions: number[] = [];
    for (const [region, state] of this.#regions) {
      if (region >= firstRegion && region < endRegion && keep(state)) regions.push(region);
    }
    return regions.sort((a, b) => a - b);
  }
}
