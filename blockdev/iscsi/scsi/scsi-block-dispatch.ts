import type { BlockCommandContext } from './scsi-block-commands.js';
import { SUPPORTED_COMMANDS } from './scsi-command-table.js';
import { serviceActionOf } from './scsi-opcodes.js';
import { invalidFieldInCdb } from './scsi-sense.js';
import type { SupportedCommand } from './scsi-supported-command.js';
import type { ScsiOutcome, ScsiTask } from './scsi-task.js';

/** The table's rows with a handler, by opcode, built once: this is on every command's path. */
const TABLE_DISPATCHED: ReadonlyMap<number, readonly SupportedCommand[]> = (() => {
  const byOpcode = new Map<number, SupportedCommand[]>();
  for (const command of SUPPORTED_COMMANDS) {
    if (command.run !== undefined) {
      byOpcode.set(command.opcode, [...(byOpcode.get(command.opcode) ?? []), command]);
    }
  }
  return byOpcode;
})();

/**
 * The table-dispatched commands (scsi-command-table.ts): the SBC-3 data
 * commands and REPORT SUPPORTED OPERATION CODES, everything that needs only
 * the BlockCommandContext. Undefined when the opcode is not one of them: the
 * session's own switch handles it (or answers INVALID COMMAND OPERATION CODE).
 */
export function runBlockCommand(context: BlockCommandContext, task: ScsiTask): ScsiOutcome | undefined {
  const commands = TABLE_DISPATCHED.get(task.cdb[0] ?? 0);
  const first = commands?.[0];
  if (commands === undefined || first === undefined) {
    return undefined;
  }
  if (first.serviceAction === undefined) {
    return first.run?.(context, task);
  }
  const serviceAction = serviceActionOf(task.cdb);
  const command = commands.find((candidate) => candidate.serviceAction === serviceAction);
  if (command === undefined) {
    // SPC-4 (CDB formats, SERVICE ACTION field): an unsupported service action is an invalid field, not an invalid opcode.
    throw invalidFieldInCdb(1, 4);
  }
  return command.run?.(context, task);
}
