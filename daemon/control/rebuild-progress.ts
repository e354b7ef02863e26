import type { RebuildProgressView } from '../control-plane.js';
import type { ReplicaRepairView } from '../reconciler/rebuild-reconciler.js';

/**
 * `volume inspect` progress (issue 4 "Rebuild: progress in volume inspect"):
 * the owner's reconciler knows how far each catch-up got; replicas it never
 * rebuilt have no entry.
 */
export function rebuildProgressByNode(repairs: readonly ReplicaRepairView[]): Map<string, RebuildProgressView> {
  const byNode = new Map<string, RebuildProgressView>();
  for (const repair of repairs) {
    if (repair.progress === null) continue;
    byNode.set(repair.nodeId, {
      copiedBytes: repair.progress.doneBytes,
      totalBytes: repair.progress.totalBytes,
      done: !repair.rebuilding,
    });
  }
  return byNode;
}
