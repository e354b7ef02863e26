import { formatDurationMs, parseDurationMs } from '../../../common/durations.js';
import { CliUsageError } from '../cli-usage-error.js';
import { renderJson } from '../table.js';
import { argAt, type CommandSpec } from './command-spec.js';

/**
 * `plinth snapshot schedule VOLUME [--every 1h --keep 24 | --off]` (issue 8
 * "Retention"; docs/snapshots.md "Retention"). Without options it shows the
 * schedule. The cluster leader takes `auto-…` snapshots and deletes the
 * oldest auto ones beyond --keep; user-named snapshots are never touched.
 */
export const snapshotScheduleCommand: CommandSpec = {
  noun: 'snapshot', verbs: ['schedule'], args: ['VOLUME'], options: ['every', 'keep', 'off'], requiredOptions: [],
  synopsis: 'snapshot schedule VOLUME [--every 1h --keep 24 | --off]',
  summary: 'take auto snapshots every interval, keep the newest N (leader-run)',
  async run(context, args, options) {
    const volume = argAt(args, 0);
    const setting = options.every !== undefined || options.keep !== undefined;
    if (options.off === true && setting) throw new CliUsageError('"snapshot schedule" takes either --every and --keep, or --off');
    if (setting && (options.every === undefined || options.keep === undefined)) throw new CliUsageError('"snapshot schedule" needs both --every and --keep');
    const view = options.off === true
      ? await context.client.setSnapshotSchedule(volume, null)
      : setting
        ? await context.client.setSnapshotSchedule(volume, { everyMs: parseEvery(options.every ?? ''), keep: parseKeep(options.keep ?? '') })
        : await context.client.snapshotSchedule(volume);
    if (context.json) {
      context.print(renderJson(view));
      return;
    }
    context.print(view.schedule === null ? `${volume}: no snapshot schedule\n` : `${volume}: a snapshot every ${formatDurationMs(view.schedule.everyMs)}, keeping the newest ${view.schedule.keep}\n`);
  },
};

function parseEvery(text: string): number {
  try {
    return parseDurationMs(text);
  } catch (error) {
    throw new CliUsageError(`--every: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}

function parseKeep(text: string): number {
  if (!/^\d{1,4}$/.test(text)) throw new CliUsageError(`--keep must be a whole number, got "${text}"`);
  return Number(text);
}
