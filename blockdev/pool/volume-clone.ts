import { PlinthError } from '../../common/plinth-error.js';
import { MAX_SIZE_BYTES } from '../../common/sizes.js';
import { ExtentMap } from './extent-map.js';
import { assertVolumeId } from './metadata-store.js';
import type { VolumeState } from './pool-state.js';
import { dropReferences, requireSnapshot, requireVolume, type SnapshotContext, sortedMappings } from './snapshot-store.js';

/**
 * Clones and reverts (issue 8, docs/snapshots.md): both make a volume's map
 * a copy of a snapshot's, written durably in one batch before any in-memory
 * reference count moves, so a crash leaves either the old map or the new one
 * and the counts rebuilt at open agree with it. No data is copied; the
 * shared extents copy on write later.
 */

export async function cloneVolume(
  context: SnapshotContext,
  request: { sourceVolumeId: string; snapshotId: string; newVolumeId: string; sizeBytes: number | undefined },
): Promise<void> {
  const { sourceVolumeId, snapshotId, newVolumeId } = request;
  assertVolumeId(newVolumeId);
  const existing = context.volumes.get(newVolumeId);
  if (existing !== undefined) {
    if (existing.origin !== null && existing.origin.volumeId === sourceVolumeId && existing.origin.snapshotId === snapshotId) {
      return; // the same clone again (a replica retried)
    }
    throw new PlinthError('VOLUME_EXISTS', `volume ${newVolumeId} already has a store in this pool`, { volumeId: newVolumeId });
  }
  const snapshot = requireSnapshot(requireVolume(context.volumes, sourceVolumeId), sourceVolumeId, snapshotId);
  const sizeBytes = request.sizeBytes ?? snapshot.sizeBytes;
  if (!Number.isSafeInteger(sizeBytes) || sizeBytes < snapshot.sizeBytes || sizeBytes > MAX_SIZE_BYTES) {
    throw new PlinthError('INVALID_SIZE', `a clone of ${sourceVolumeId}@${snapshotId} needs a size of at least ${snapshot.sizeBytes} bytes, got ${sizeBytes}`, {
      sizeBytes,
      snapshotSizeBytes: snapshot.sizeBytes,
    });
  }
  const mappings = sortedMappings(snapshot.extents);
  const origin = { volumeId: sourceVolumeId, snapshotId };
  await context.metadata.createVolumeWithMappings(newVolumeId, { sizeBytes, origin }, mappings);
  const extents = new ExtentMap();
  for (const [logical, location] of mappings) {
    extents.set(logical, location);
    context.refcounts.addReference(location);
  }
  const state: VolumeState = { sizeBytes, extents, store: null, snapshots: new Map(), origin };
  context.volumes.set(newVolumeId, state);
  context.logger.info({ volumeId: newVolumeId, sourceVolumeId, snapshotId, extents: mappings.length }, 'cloned volume');
}

export async function revertVolume(context: SnapshotContext, volumeId: string, snapshotId: string): Promise<void> {
  const state = requireVolume(context.volumes, volumeId);
  const snapshot = requireSnapshot(state, volumeId, snapshotId);
  if (state.store !== null) {
    throw new PlinthError('VOLUME_ATTACHED', `volume ${volumeId} is open on this pool; close it before reverting it to ${snapshotId}`, { volumeId, snapshotId });
  }
  // Nothing of this volume may stay queued: a late queued mapping would land on top of the reverted map.
  await context.flusher.flush();
  const oldMappings = sortedMappings(state.extents);
  const newMappings = sortedMappings(snapshot.extents);
  await context.metadata.replaceMappings(
    volumeId,
    oldMappings.map(([logical]) => logical),
    newMappings,
  );
  // New references first, so an extent in both maps never drops to zero on the way.
  for (const [, location] of newMappings) {
    context.refcounts.addReference(location);
  }
  for (const [logical] of oldMappings) {
    state.extents.delete(logical);
  }
  const freed = dropReferences(context, oldMappings.map(([, location]) => location));
  for (const [logical, location] of newMappings) {
    state.extents.set(logical, location);
  }
  // The new map is durable; this flush makes the freed extents reusable.
  await context.flusher.flush();
  context.logger.info({ volumeId, snapshotId, freedExtents: freed }, 'reverted volume to snapshot');
}
