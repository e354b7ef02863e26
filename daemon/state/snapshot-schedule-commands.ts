import { PlinthError } from '../../common/plinth-error.js';
import type { ClusterState, VolumeRecord } from './cluster-state.js';
import type { VolumeApplied } from './replica-commands.js';
import { requireVolume, withVolume } from './state-assertions.js';

/**
 * Per-volume snapshot retention schedules in the cluster state (issue 8
 * "Retention"; docs/snapshots.md "Retention"). The leader's retention
 * reconciler (daemon/reconciler/snapshot-retention-reconciler.ts) reads
 * them: every `everyMs` it takes an `auto-…` snapshot and deletes the
 * oldest auto snapshots beyond `keep`. Committed through Raft so a new
 * leader carries on with the same schedule.
 */
export interface SnapshotSchedule {
  readonly everyMs: number;
  /** How many auto snapshots to keep; user-named snapshots never count and are never deleted. */
  readonly keep: number;
}

/** `volume.snapshot-schedule`: with everyMs and keep, sets (replaces) the schedule; with neither, turns it off. */
export interface VolumeSnapshotScheduleCommand {
  readonly type: 'volume.snapshot-schedule';
  readonly name: string;
  readonly everyMs?: number;
  readonly keep?: number;
}

/** A minute: the reconciler's pass runs every few seconds and each snapshot is a Raft entry plus a pause of the owner. */
export const MIN_SCHEDULE_EVERY_MS = 60_000;
export const MAX_SCHEDULE_EVERY_MS = 366 * 24 * 60 * 60 * 1000;
/** Well under the 1024 snapshots a volume may hold, leaving room for user-named ones. */
export const MAX_SCHEDULE_KEEP = 512;

/** Why a schedule is unusable, or undefined; shared with the REST edge so both say the same. */
export function snapshotScheduleProblem(everyMs: number, keep: number): string | undefined {
  if (!Number.isSafeInteger(everyMs) || everyMs < MIN_SCHEDULE_EVERY_MS || everyMs > MAX_SCHEDULE_EVERY_MS) {
    return `everyMs must be ${MIN_SCHEDULE_EVERY_MS} (1m) to ${MAX_SCHEDULE_EVERY_MS} (366d), got ${everyMs}`;
  }
  if (!Number.isSafeInteger(keep) || keep < 1 || keep > MAX_SCHEDULE_KEEP) return `keep must be 1 to ${MAX_SCHEDULE_KEEP}, got ${keep}`;
  return undefined;
}

export function setSnapshotSchedule(state: ClusterState, command: VolumeSnapshotScheduleCommand): VolumeApplied {
  const volume = requireVolume(state, command.name);
  const { snapshotSchedule: _previous, ...withoutSchedule } = volume;
  if (command.everyMs === undefined && command.keep === undefined) {
    const updated: VolumeRecord = withoutSchedule;
    return { state: withVolume(state, updated), volume: updated };
  }
  if (command.everyMs === undefined || command.keep === undefined) {
    throw new PlinthError('INVALID_ARGUMENT', `volume ${volume.name}: a snapshot schedule needs both everyMs and keep (or neither, to turn it off)`, { name: volume.name });
  }
  const problem = snapshotScheduleProblem(command.everyMs, command.keep);
  if (problem !== undefined) throw new PlinthError('INVALID_ARGUMENT', `volume ${volume.name}: snapshot schedule ${problem}`, { name: volume.name, reason: problem });
  const updated: VolumeRecord = { ...withoutSchedule, snapshotSchedule: { everyMs: command.everyMs, keep: command.keep } };
  return { state: withVolume(state, updated), volume: updated };
}
