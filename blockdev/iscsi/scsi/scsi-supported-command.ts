import type { BlockCommandContext } from './scsi-block-commands.js';
import type { LogicalUnitGeometry } from './scsi-geometry.js';
import type { ScsiOutcome, ScsiTask } from './scsi-task.js';

/**
 * One row of the device server's command table (scsi-command-table.ts): what
 * REPORT SUPPORTED OPERATION CODES says about a command, and its handler when
 * the table dispatches it.
 *
 * CDB USAGE DATA (SPC-4 §6.35.3): byte 0 is the opcode, a service action sits
 * in its own field, every other bit is 1 when the device server uses the
 * corresponding CDB bit and 0 when the bit is reserved or ignored.
 */

/** Throws (ScsiCheckCondition) or rejects for a SCSI-level error; answers at once when it can (ScsiOutcome). */
export type CommandHandler = (context: BlockCommandContext, task: ScsiTask) => ScsiOutcome;

export interface SupportedCommand {
  readonly name: string;
  readonly opcode: number;
  /** Present for opcodes whose commands are told apart by a SERVICE ACTION (byte 1, bits 4-0). */
  readonly serviceAction?: number;
  /** The CDB usage data; a function where it depends on the logical unit (UNMAP bits on a thin volume). */
  readonly usage: readonly number[] | ((geometry: LogicalUnitGeometry) => readonly number[]);
  /** False: the command answers INVALID COMMAND OPERATION CODE on this logical unit. Default: available. */
  readonly availableOn?: (geometry: LogicalUnitGeometry) => boolean;
  /** The handler for table-dispatched commands; absent: LogicalUnitSession's own switch runs it. */
  readonly run?: CommandHandler;
}

export function usageDataOf(command: SupportedCommand, geometry: LogicalUnitGeometry): readonly number[] {
  return typeof command.usage === 'function' ? command.usage(geometry) : command.usage;
}

export function isAvailable(command: SupportedCommand, geometry: LogicalUnitGeometry): boolean {
  return command.availableOn?.(geometry) ?? true;
}
