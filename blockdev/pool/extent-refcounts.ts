import { PlinthError } from '../../common/plinth-error.js';

/**
 * How many extent maps (volumes, snapshots, clones) reference each physical
 * extent (issue 8, docs/snapshots.md). Pure in-memory state, never stored:
 * at pool open it is rebuilt from the durable maps, so it cannot disagree
 * with them after a crash, and an extent that no durable map references is
 * simply free again (nothing leaks).
 *
 * Only extents with more than one reference are kept: an extent mapped once
 * (the common case, and every extent of a pool without snapshots) costs no
 * entry, and the write path's "is this extent shared?" check is one lookup
 * in a map that is empty unless snapshots or clones exist.
 */
export class ExtentRefcounts {
  /** location → references beyond the first (so a value of 1 means two maps reference it). */
  readonly #extraReferences = new Map<number, number>();

  /** True when more than one map references the extent: it must never be written in place. */
  isShared(location: number): boolean {
    return this.#extraReferences.size !== 0 && this.#extraReferences.has(location);
  }

  /** References to `location` (1 for any mapped extent not in the table). */
  references(location: number): number {
    return 1 + (this.#extraReferences.get(location) ?? 0);
  }

  /** One more map references an extent that is already referenced (never a fresh one: that has one implicit reference). */
  addReference(location: number): void {
    this.#extraReferences.set(location, (this.#extraReferences.get(location) ?? 0) + 1);
  }

  /**
   * One map stops referencing the extent. Returns true when that was the
   * last reference: the caller frees the extent (allocator.free, which keeps
   * it pending until the unmapping is durable).
   */
  dropReference(location: number): boolean {
    const extra = this.#extraReferences.get(location);
    if (extra === undefined) {
      return true;
    }
    if (extra <= 0) {
      throw new PlinthError('INTERNAL', `extent refcounts: location ${location} holds a non-positive count ${extra}`, { location, extra });
    }
    if (extra === 1) {
      this.#extraReferences.delete(location);
    } else {
      this.#extraReferences.set(location, extra - 1);
    }
    return false;
  }

  /** Physical extents referenced by more than one map. */
  get sharedExtents(): number {
    return this.#extraReferences.size;
  }
}
