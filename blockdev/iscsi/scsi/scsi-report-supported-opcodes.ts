import type { LogicalUnitGeometry } from './scsi-geometry.js';
import { invalidFieldInCdb } from './scsi-sense.js';
import { isAvailable, type SupportedCommand, usageDataOf } from './scsi-supported-command.js';
import { ScsiStatus, type ScsiResponse } from './scsi-task.js';

/**
 * REPORT SUPPORTED OPERATION CODES (SPC-4 §6.35), a MAINTENANCE IN service
 * action: pure, from the command table it is given (scsi-command-table.ts),
 * so what it reports is what the dispatchers run. Initiators use it to learn
 * which optional commands and CDB bits exist (libiscsi's *DpoFua tests read
 * the DPO/FUA bits of the usage data; its start-up reads the whole list).
 */

/** SPC-4 §6.35.1, REPORTING OPTIONS (byte 2, bits 2-0). */
export const ReportingOptions = {
  ALL_COMMANDS: 0b000,
  ONE_COMMAND_BY_OPCODE: 0b001,
  ONE_COMMAND_BY_SERVICE_ACTION: 0b010,
  ONE_COMMAND_BY_OPCODE_OR_SERVICE_ACTION: 0b011,
} as const;

/** SPC-4 §6.35.3, SUPPORT field of the one-command format. */
export const CommandSupport = {
  NOT_SUPPORTED: 0b001,
  SUPPORTED_AS_STANDARD: 0b011,
} as const;

const RCTD = 0x80;
/** Reserved bits of byte 2 (between RCTD and REPORTING OPTIONS). */
const BYTE2_RESERVED = 0x78;
const COMMAND_DESCRIPTOR_BYTES = 8;
/** SPC-4 §6.35.4: the command timeouts descriptor, DESCRIPTOR LENGTH 0x0a. */
const TIMEOUTS_DESCRIPTOR_BYTES = 12;

/**
 * Command timeouts descriptor (SPC-4 §6.35.4). Plinth gives no figures:
 * NOMINAL and RECOMMENDED COMMAND TIMEOUT 0 mean "not specified", which is
 * honest for a replicated volume whose latency is the slowest replica's.
 */
function timeoutsDescriptor(): Buffer {
  const out = Buffer.alloc(TIMEOUTS_DESCRIPTOR_BYTES);
  out.writeUInt16BE(TIMEOUTS_DESCRIPTOR_BYTES - 2, 0);
  return out;
}

/** Reporting option 000b (SPC-4 §6.35.2): every supported command, one descriptor each. */
function allCommandsData(commands: readonly SupportedCommand[], geometry: LogicalUnitGeometry, withTimeouts: boolean): Buffer {
  const descriptors = commands.map((command) => {
    const descriptor = Buffer.alloc(COMMAND_DESCRIPTOR_BYTES);
    descriptor[0] = command.opcode;
    descriptor.writeUInt16BE(command.serviceAction ?? 0, 2);
    // CTDP (bit 1): a timeouts descriptor follows; SERVACTV (bit 0): the SERVICE ACTION field is valid.
    descriptor[5] = (withTimeouts ? 0x02 : 0) | (command.serviceAction === undefined ? 0 : 0x01);
    descriptor.writeUInt16BE(usageDataOf(command, geometry).length, 6);
    return withTimeouts ? Buffer.concat([descriptor, timeoutsDescriptor()]) : descriptor;
  });
  const header = Buffer.alloc(4);
  const body = Buffer.concat(descriptors);
  header.writeUInt32BE(body.length, 0);
  return Buffer.concat([header, body]);
}

/** Which command a one-command request (options 001b-011b) names; undefined: not supported. */
function requestedCommand(commands: readonly SupportedCommand[], options: number, opcode: number, serviceAction: number): SupportedCommand | undefined {
  const withOpcode = commands.filter((command) => command.opcode === opcode);
  const hasServiceActions = withOpcode.some((command) => command.serviceAction !== undefined);
  const byServiceAction = (): SupportedCommand | undefined => withOpcode.find((command) => command.serviceAction === serviceAction);
  switch (options) {
    case ReportingOptions.ONE_COMMAND_BY_OPCODE:
      // An opcode with service actions cannot be named without one (SPC-4 §6.35.1).
      if (hasServiceActions) {
        throw invalidFieldInCdb(2);
      }
      return withOpcode[0];
    case ReportingOptions.ONE_COMMAND_BY_SERVICE_ACTION:
      if (withOpcode.length > 0 && !hasServiceActions) {
        throw invalidFieldInCdb(2);
      }
      return byServiceAction();
    default:
      return hasServiceActions ? byServiceAction() : withOpcode[0];
  }
}

/** The one-command parameter data (SPC-4 §6.35.3). */
function oneCommandData(command: SupportedCommand | undefined, geometry: LogicalUnitGeometry, withTimeouts: boolean): Buffer {
  const header = Buffer.alloc(4);
  if (command === undefined) {
    header[1] = CommandSupport.NOT_SUPPORTED;
    return header;
  }
  const usage = Buffer.from(usageDataOf(command, geometry));
  // CTDP (bit 7) and SUPPORT (bits 2-0), then CDB SIZE and the usage data.
  header[1] = (withTimeouts ? 0x80 : 0) | CommandSupport.SUPPORTED_AS_STANDARD;
  header.writeUInt16BE(usage.length, 2);
  return Buffer.concat(withTimeouts ? [header, usage, timeoutsDescriptor()] : [header, usage]);
}

/** The MAINTENANCE IN CDB (12 bytes): validate, answer, cut to the ALLOCATION LENGTH (bytes 6-9). */
export function reportSupportedOperationCodes(
  commands: readonly SupportedCommand[],
  geometry: LogicalUnitGeometry,
  cdb: Buffer,
): ScsiResponse {
  const byte2 = cdb[2] ?? 0;
  if ((byte2 & BYTE2_RESERVED) !== 0) {
    throw invalidFieldInCdb(2);
  }
  const withTimeouts = (byte2 & RCTD) !== 0;
  const options = byte2 & 0x07;
  const available = commands.filter((command) => isAvailable(command, geometry));
  let data: Buffer;
  if (options === ReportingOptions.ALL_COMMANDS) {
    data = allCommandsData(available, geometry, withTimeouts);
  } else if (options <= ReportingOptions.ONE_COMMAND_BY_OPCODE_OR_SERVICE_ACTION) {
    const command = requestedCommand(available, options, cdb[3] ?? 0, cdb.readUInt16BE(4));
    data = oneCommandData(command, geometry, withTimeouts);
  } else {
    throw invalidFieldInCdb(2, 2);
  }
  const allocationLength = cdb.readUInt32BE(6);
  return { status: ScsiStatus.GOOD, dataIn: data.length > allocationLength ? data.subarray(0, allocationLength) : data };
}
