import { PlinthError } from '../../common/plinth-error.js';
import type { CommandProposer } from '../control/command-proposer.js';
import { expectVolumeResult } from '../control/command-proposer.js';
import { findVolume } from '../state/cluster-state.js';
import type { SnapshotSchedule } from '../state/snapshot-schedule-commands.js';

/**
 * `plinth snapshot schedule VOL --every 1h --keep 24` / `--off` and
 * `PUT|DELETE|GET /v1/volumes/{name}/snapshot-schedule` (issue 8
 * "Retention"): commit the schedule; the leader's retention reconciler
 * runs it.
 */
export interface SnapshotScheduleView {
  readonly volume: string;
  /** null: no schedule. */
  readonly schedule: SnapshotSchedule | null;
}

export class RetentionScheduleService {
  readonly #commands: CommandProposer;

  constructor(modules: { readonly commands: CommandProposer }) {
    this.#commands = modules.commands;
  }

  async get(volume: string): Promise<SnapshotScheduleView> {
    await this.#commands.barrier?.();
    const record = findVolume(this.#commands.state, volume);
    if (record === undefined) throw new PlinthError('VOLUME_NOT_FOUND', `volume ${volume} does not exist`, { name: volume });
    return { volume, schedule: record.snapshotSchedule ?? null };
  }

  /** Throws VOLUME_NOT_FOUND, INVALID_ARGUMENT (everyMs under a minute, keep out of 1-512). null turns it off. */
  async set(volume: string, schedule: SnapshotSchedule | null): Promise<SnapshotScheduleView> {
    const command = schedule === null
      ? { type: 'volume.snapshot-schedule' as const, name: volume }
      : { type: 'volume.snapshot-schedule' as const, name: volume, everyMs: schedule.everyMs, keep: schedule.keep };
    const updated = expectVolumeResult(await this.#commands.propose(command));
    return { volume, schedule: updated.snapshotSchedule ?? null };
  }
}
