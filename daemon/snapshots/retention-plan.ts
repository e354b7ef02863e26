import type { ClusterState, VolumeRecord } from '../state/cluster-state.js';

/**
 * Snapshot retention (issue 8 "Retention"; docs/snapshots.md "Retention"),
 * the pure part: from the committed state and the time, what the leader
 * does next. Auto snapshots are named `auto-YYYYMMDDTHHMMSSZ` (ISO 8601
 * basic format: snapshot names allow no ':'); only names of that exact
 * shape are ever deleted, so user-named snapshots are safe. A snapshot is
 * due when the newest auto snapshot is at least everyMs old (or there is
 * none); auto snapshots beyond `keep`, oldest first, are deleted.
 */
export type RetentionAction =
  | { readonly kind: 'create'; readonly volume: string; readonly snapshotName: string }
  | { readonly kind: 'delete'; readonly volume: string; readonly snapshotName: string };

const AUTO_NAME = /^auto-\d{8}T\d{6}Z$/;

export function isAutoSnapshotName(name: string): boolean {
  return AUTO_NAME.test(name);
}

/** `auto-20261126T220000Z` for 2026-11-26T22:00:00.xxxZ. */
export function autoSnapshotName(nowMs: number): string {
  return `auto-${new Date(nowMs).toISOString().replace(/\.\d{3}Z$/, 'Z').replace(/[-:]/g, '')}`;
}

export function planRetention(state: ClusterState, nowMs: number): RetentionAction[] {
  const actions: RetentionAction[] = [];
  for (const volume of Object.values(state.volumes)) actions.push(...planVolume(volume, nowMs));
  return actions;
}

function planVolume(volume: VolumeRecord, nowMs: number): RetentionAction[] {
  const schedule = volume.snapshotSchedule;
  // A volume being received is not the user's yet: its content is half-written.
  if (schedule === undefined || volume.receive !== undefined) return [];
  const autos = (volume.snapshots ?? [])
    .filter((snapshot) => isAutoSnapshotName(snapshot.name))
    .map((snapshot) => ({ name: snapshot.name, createdAtMs: Date.parse(snapshot.createdAt) }))
    .sort((a, b) => a.createdAtMs - b.createdAtMs || a.name.localeCompare(b.name));
  const actions: RetentionAction[] = autos
    .slice(0, Math.max(0, autos.length - schedule.keep))
    .map((snapshot) => ({ kind: 'delete', volume: volume.name, snapshotName: snapshot.name }));
  const newest = autos.at(-1);
  const name = autoSnapshotName(nowMs);
  const due = newest === undefined || nowMs - newest.createdAtMs >= schedule.everyMs;
  // Two passes in the same second would pick the same name: the second waits.
  if (due && !autos.some((snapshot) => snapshot.name === name) && !(volume.snapshots ?? []).some((snapshot) => snapshot.name === name)) {
    actions.push({ kind: 'create', volume: volume.name, snapshotName: name });
  }
  return actions;
}
