import type { Logger } from 'pino';
import { PlinthError } from '../../common/plinth-error.js';
import type { ExtentAllocator } from './extent-allocator.js';
import type { ExtentIo } from './extent-io.js';
import { ExtentMap } from './extent-map.js';
import type { ExtentRefcounts } from './extent-refcounts.js';
import type { MappingList, MetadataStore } from './metadata-store.js';
import type { PoolFlusher } from './pool-flusher.js';
import type { SnapshotState, VolumeState } from './pool-state.js';
import type { SnapshotInfo } from './pool-types.js';
import { PoolSnapshotStore } from './snapshot-device.js';

/**
 * Snapshots of pool volumes (issue 8, docs/snapshots.md): create, open,
 * delete, list, and the extent lists send/receive needs. The DiskPool runs
 * each mutation in its control queue, so these functions never race with
 * one another; the volumes' data paths keep running meanwhile.
 *
 * A snapshot is a frozen copy of the volume's extent map. Taking one adds a
 * reference to every extent it maps (extent-refcounts.ts), which makes each
 * of them shared: the volume's next write into one copies on write
 * (volume-store.ts). Dropping the last reference frees an extent through
 * allocator.free, which keeps it unusable until the unmapping is durable.
 */

/** Each snapshot holds a copy of the volume's map in memory: a bound per volume (STYLE habit 7). */
export const MAX_SNAPSHOTS_PER_VOLUME = 1024;

export interface SnapshotContext {
  readonly volumes: Map<string, VolumeState>;
  readonly metadata: MetadataStore;
  readonly allocator: ExtentAllocator;
  readonly refcounts: ExtentRefcounts;
  readonly io: ExtentIo;
  readonly flusher: PoolFlusher;
  readonly nowMs: () => number;
  readonly logger: Logger;
}

/**
 * Volume ids' alphabet without '@': no '!' (it separates the parts of
 * metadata keys) and no '@', so an export name `volume@snapshot` splits at its last '@'.
 */
const SNAPSHOT_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,254}$/;

export function assertSnapshotId(snapshotId: string): void {
  if (!SNAPSHOT_ID_PATTERN.test(snapshotId)) {
    throw new PlinthError('INVALID_ARGUMENT', `invalid snapshot id "${snapshotId}": use 1-255 of [A-Za-z0-9._:-], starting alphanumeric`, { snapshotId });
  }
}

export function requireVolume(volumes: ReadonlyMap<string, VolumeState>, volumeId: string): VolumeState {
  const state = volumes.get(volumeId);
  if (state === undefined) {
    throw new PlinthError('VOLUME_NOT_FOUND', `volume ${volumeId} has no store in this pool`, { volumeId });
  }
  return state;
}

export function requireSnapshot(state: VolumeState, volumeId: string, snapshotId: string): SnapshotState {
  const snapshot = state.snapshots.get(snapshotId);
  if (snapshot === undefined) {
    throw new PlinthError('SNAPSHOT_NOT_FOUND', `volume ${volumeId} has no snapshot ${snapshotId} in this pool`, { volumeId, snapshotId });
  }
  return snapshot;
}

/** [logical, location] pairs of a map, ascending by logical index. */
export function sortedMappings(extents: ExtentMap): [number, number][] {
  return [...extents.entries()].sort((left, right) => left[0] - right[0]);
}

/** Drop one reference to each location; free the ones nobody references any more. Returns how many were freed. */
export function dropReferences(context: Pick<SnapshotContext, 'refcounts' | 'allocator'>, locations: Iterable<number>): number {
  let freed = 0;
  for (const location of locations) {
    if (context.refcounts.dropReference(location)) {
      context.allocator.free(location);
      freed += 1;
    }
  }
  return freed;
}

export async function createSnapshot(context: SnapshotContext, volumeId: string, snapshotId: string): Promise<void> {
  assertSnapshotId(snapshotId);
  const state = requireVolume(context.volumes, volumeId);
  if (state.snapshots.has(snapshotId)) {
    return; // ids are unique cluster-wide: the same request again (a replica retried)
  }
  if (state.snapshots.size >= MAX_SNAPSHOTS_PER_VOLUME) {
    throw new PlinthError('SNAPSHOT_LIMIT', `volume ${volumeId} already has ${state.snapshots.size} snapshots, the most a pool keeps per volume`, {
      volumeId,
      snapshotId,
      maxSnapshots: MAX_SNAPSHOTS_PER_VOLUME,
    });
  }
  // The point in time: the volume's map as it is now. From the next line on,
  // every extent in it is shared, so the volume's writes copy on write.
  const mappings: MappingList = sortedMappings(state.extents);
  const extents = new ExtentMap();
  for (const [logical, location] of mappings) {
    extents.set(logical, location);
    context.refcounts.addReference(location);
  }
  const snapshot: SnapshotState = { snapshotId, sizeBytes: state.sizeBytes, createdAtMs: context.nowMs(), extents, device: null };
  state.snapshots.set(snapshotId, snapshot);
  try {
    // The extents' bytes must be on disk before a durable map points at them (invariant 5).
    await context.flusher.flush();
    await context.metadata.saveSnapshot(volumeId, snapshotId, { sizeBytes: snapshot.sizeBytes, createdAtMs: snapshot.createdAtMs }, mappings);
  } catch (err) {
    state.snapshots.delete(snapshotId);
    dropReferences(context, mappings.map(([, location]) => location));
    throw err;
  }
  context.logger.info({ volumeId, snapshotId, extents: mappings.length }, 'created snapshot');
}

export function openSnapshot(context: SnapshotContext, volumeId: string, snapshotId: string): PoolSnapshotStore {
  const snapshot = requireSnapshot(requireVolume(context.volumes, volumeId), volumeId, snapshotId);
  if (snapshot.device !== null && !snapshot.device.closed) {
    return snapshot.device;
  }
  const device = new PoolSnapshotStore(
    {
      volumeId,
      snapshotId,
      sizeBytes: snapshot.sizeBytes,
      extents: snapshot.extents,
      onClosed: (closed) => {
        if (snapshot.device === closed) {
          snapshot.device = null;
        }
      },
    },
    context.io,
  );
  snapshot.device = device;
  return device;
}

export function assertSnapshotClosed(volumeId: string, snapshot: SnapshotState): void {
  if (snapshot.device !== null && !snapshot.device.closed) {
    throw new PlinthError('SNAPSHOT_OPEN', `snapshot ${volumeId}@${snapshot.snapshotId} is open; close it first`, {
      volumeId,
      snapshotId: snapshot.snapshotId,
    });
  }
}

export async function deleteSnapshot(context: SnapshotContext, volumeId: string, snapshotId: string): Promise<void> {
  const snapshot = context.volumes.get(volumeId)?.snapshots.get(snapshotId);
  if (snapshot === undefined) {
    return; // idempotent, like deleteVolume
  }
  assertSnapshotClosed(volumeId, snapshot);
  const mappings = sortedMappings(snapshot.extents);
  await context.metadata.deleteSnapshot(
    volumeId,
    snapshotId,
    mappings.map(([logical]) => logical),
  );
  context.volumes.get(volumeId)?.snapshots.delete(snapshotId);
  const freed = dropReferences(context, mappings.map(([, location]) => location));
  // The deletion is durable already; this flush makes the freed extents reusable.
  await context.flusher.flush();
  context.logger.info({ volumeId, snapshotId, freedExtents: freed }, 'deleted snapshot');
}

export function listSnapshots(context: Pick<SnapshotContext, 'volumes' | 'refcounts' | 'io'>, volumeId: string): SnapshotInfo[] {
  const state = context.volumes.get(volumeId);
  if (state === undefined) {
    return [];
  }
  const extentSizeBytes = context.io.extentSizeBytes;
  return [...state.snapshots.values()].map((snapshot) => {
    let exclusiveExtents = 0;
    for (const [, location] of snapshot.extents.entries()) {
      if (context.refcounts.references(location) === 1) {
        exclusiveExtents += 1;
      }
    }
    return {
      snapshotId: snapshot.snapshotId,
      sizeBytes: snapshot.sizeBytes,
      createdAtMs: snapshot.createdAtMs,
      exclusiveBytes: exclusiveExtents * extentSizeBytes,
      sharedBytes: (snapshot.extents.allocatedExtents - exclusiveExtents) * extentSizeBytes,
    };
  });
}

export function snapshotExtents(volumes: ReadonlyMap<string, VolumeState>, volumeId: string, snapshotId: string): number[] {
  const snapshot = requireSnapshot(requireVolume(volumes, volumeId), volumeId, snapshotId);
  return sortedMappings(snapshot.extents).map(([logical]) => logical);
}

/** Logical extents whose physical location differs between two snapshots of one volume (a missing mapping counts as a difference). */
export function changedExtents(volumes: ReadonlyMap<string, VolumeState>, volumeId: string, fromSnapshotId: string, toSnapshotId: string): number[] {
  const state = requireVolume(volumes, volumeId);
  const from = requireSnapshot(state, volumeId, fromSnapshotId).extents;
  const to = requireSnapshot(state, volumeId, toSnapshotId).extents;
  const changed: number[] = [];
  for (const [logical, location] of to.entries()) {
    if (from.get(logical) !== location) {
      changed.push(logical);
    }
  }
  for (const [logical] of from.entries()) {
    if (to.get(logical) === undefined) {
      changed.push(logical);
    }
  }
  return changed.sort((left, right) => left - right);
}
