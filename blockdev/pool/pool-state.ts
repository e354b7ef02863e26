import type { ExtentMap } from './extent-map.js';
import type { PoolSnapshotStore } from './snapshot-device.js';
import type { PoolVolumeStore } from './volume-store.js';

/**
 * The pool's in-memory state of one volume and its snapshots. The durable
 * copy is the level keys of metadata-store.ts; the extent refcounts
 * (extent-refcounts.ts) are derived from every ExtentMap here.
 */

export interface SnapshotState {
  readonly snapshotId: string;
  readonly sizeBytes: number;
  readonly createdAtMs: number;
  /** Never changes after creation: a snapshot's extents are shared, so they are never written. */
  readonly extents: ExtentMap;
  device: PoolSnapshotStore | null;
}

export interface VolumeOrigin {
  readonly volumeId: string;
  readonly snapshotId: string;
}

export interface VolumeState {
  sizeBytes: number;
  readonly extents: ExtentMap;
  store: PoolVolumeStore | null;
  /** In creation order (Map keeps insertion order; loaded ones are sorted by createdAtMs). */
  readonly snapshots: Map<string, SnapshotState>;
  /** The snapshot a clone was made from (null for a volume created empty). */
  readonly origin: VolumeOrigin | null;
}
