import {
  type BlockCommandContext,
  compareAndWrite,
  orWrite,
  preFetch,
  readBlocks,
  synchronizeCache,
  verifyBlocks,
  writeBlocks,
  writeSame,
} from './scsi-block-commands.js';
import { decodeSynchronizeCache } from './scsi-cdb.js';
import type { LogicalUnitGeometry } from './scsi-geometry.js';
import { MaintenanceIn, Opcode, ServiceActionIn16 } from './scsi-opcodes.js';
import { PrinAction, ProutAction } from './scsi-persistent-reservations.js';
import { unmap } from './scsi-provisioning-commands.js';
import { reportSupportedOperationCodes } from './scsi-report-supported-opcodes.js';
import type { ScsiResponse, ScsiTask } from './scsi-task.js';
import type { SupportedCommand } from './scsi-supported-command.js';

/**
 * Every command the device server implements, in one table: what REPORT
 * SUPPORTED OPERATION CODES (SPC-4 §6.35) tells initiators, and, for the
 * commands that need only the logical unit's device, geometry, mode pages
 * and range lock, the handler the dispatcher runs (scsi-block-dispatch.ts).
 * Commands that need per-session state (unit attentions, reservations,
 * INQUIRY identity ...) carry no handler: LogicalUnitSession's own switch runs
 * them. test/unit/iscsi/scsi-report-supported-opcodes.test.ts sends every
 * opcode and service action to a real session and checks that exactly the
 * listed ones are accepted, so the table and the dispatchers cannot drift.
 *
 * The usage data follows SPC-4 §6.35.3 (see scsi-supported-command.ts);
 * PROTECT fields are reported as used: the decoders read them and refuse a
 * non-zero value (no protection information), as libiscsi's *Protect tests
 * expect.
 */

const FF = 0xff;
const LBA_32 = [FF, FF, FF, FF];
const LBA_64 = [FF, FF, FF, FF, FF, FF, FF, FF];
const LENGTH_16 = [FF, FF];
const LENGTH_32 = [FF, FF, FF, FF];
/** The CONTROL byte: NACA and LINK are not supported (SAM-5 §5.2), so no bit of it is used. */
const CONTROL = 0x00;
/** RDPROTECT/WRPROTECT (bits 7-5), DPO (bit 4), FUA (bit 3): MODE SENSE reports DPOFUA = 1. */
const PROTECT_DPO_FUA = 0xf8;
/** WRITE AND VERIFY: WRPROTECT, DPO, BYTCHK (bit 1). */
const PROTECT_DPO_BYTCHK = 0xf2;
/** VERIFY: VRPROTECT, DPO, BYTCHK (bits 2-1). */
const VERIFY_FLAGS = 0xf6;
const IMMED = 0x02;

const writeSameFlags = (geometry: LogicalUnitGeometry, ndob: boolean): number =>
  // WRPROTECT, UNMAP (bit 3) on a thin volume, NDOB (bit 0) in WRITE SAME (16); ANCHOR is refused.
  0xe0 | (geometry.thinProvisioned ? 0x08 : 0) | (ndob ? 0x01 : 0);

const isThin = (geometry: LogicalUnitGeometry): boolean => geometry.thinProvisioned;

function withSynchronizeCache(context: BlockCommandContext, task: ScsiTask): Promise<ScsiResponse> {
  return synchronizeCache(context, decodeSynchronizeCache(task.cdb));
}

function reportOpcodes(context: BlockCommandContext, task: ScsiTask): ScsiResponse {
  return reportSupportedOperationCodes(SUPPORTED_COMMANDS, context.geometry, task.cdb);
}

const persistentReserveIn = Object.entries(PrinAction).map(
  ([action, code]): SupportedCommand => ({
    name: `PERSISTENT RESERVE IN ${action.replace(/_/g, ' ')}`,
    opcode: Opcode.PERSISTENT_RESERVE_IN,
    serviceAction: code,
    usage: [Opcode.PERSISTENT_RESERVE_IN, code, 0, 0, 0, 0, 0, ...LENGTH_16, CONTROL],
  }),
);

const persistentReserveOut = Object.entries(ProutAction).map(
  ([action, code]): SupportedCommand => ({
    name: `PERSISTENT RESERVE OUT ${action.replace(/_/g, ' ')}`,
    opcode: Opcode.PERSISTENT_RESERVE_OUT,
    serviceAction: code,
    // SCOPE and TYPE in byte 2, PARAMETER LIST LENGTH in bytes 5-8 (SPC-4 §6.16.1).
    usage: [Opcode.PERSISTENT_RESERVE_OUT, code, FF, 0, 0, ...LENGTH_32, CONTROL],
  }),
);

/** Ascending by opcode, then service action: the order REPORT SUPPORTED OPERATION CODES lists them in. */
export const SUPPORTED_COMMANDS: readonly SupportedCommand[] = [
  { name: 'TEST UNIT READY', opcode: Opcode.TEST_UNIT_READY, usage: [Opcode.TEST_UNIT_READY, 0, 0, 0, 0, CONTROL] },
  { name: 'REQUEST SENSE', opcode: Opcode.REQUEST_SENSE, usage: [Opcode.REQUEST_SENSE, 0x01, 0, 0, FF, CONTROL] },
  { name: 'READ(6)', opcode: Opcode.READ_6, usage: [Opcode.READ_6, 0x1f, FF, FF, FF, CONTROL], run: readBlocks },
  { name: 'WRITE(6)', opcode: Opcode.WRITE_6, usage: [Opcode.WRITE_6, 0x1f, FF, FF, FF, CONTROL], run: writeBlocks },
  { name: 'INQUIRY', opcode: Opcode.INQUIRY, usage: [Opcode.INQUIRY, 0x01, FF, ...LENGTH_16, CONTROL] },
  { name: 'MODE SELECT(6)', opcode: Opcode.MODE_SELECT_6, usage: [Opcode.MODE_SELECT_6, 0x10, 0, 0, FF, CONTROL] },
  { name: 'RESERVE(6)', opcode: Opcode.RESERVE_6, usage: [Opcode.RESERVE_6, 0, 0, 0, 0, CONTROL] },
  { name: 'RELEASE(6)', opcode: Opcode.RELEASE_6, usage: [Opcode.RELEASE_6, 0, 0, 0, 0, CONTROL] },
  { name: 'MODE SENSE(6)', opcode: Opcode.MODE_SENSE_6, usage: [Opcode.MODE_SENSE_6, 0x08, FF, FF, FF, CONTROL] },
  { name: 'START STOP UNIT', opcode: Opcode.START_STOP_UNIT, usage: [Opcode.START_STOP_UNIT, 0, 0, 0, 0xf3, CONTROL] },
  {
    name: 'PREVENT ALLOW MEDIUM REMOVAL',
    opcode: Opcode.PREVENT_ALLOW_MEDIUM_REMOVAL,
    usage: [Opcode.PREVENT_ALLOW_MEDIUM_REMOVAL, 0, 0, 0, 0x03, CONTROL],
  },
  {
    name: 'READ CAPACITY(10)',
    opcode: Opcode.READ_CAPACITY_10,
    usage: [Opcode.READ_CAPACITY_10, 0, ...LBA_32, 0, 0, 0x01, CONTROL],
  },
  {
    name: 'READ(10)',
    opcode: Opcode.READ_10,
    usage: [Opcode.READ_10, PROTECT_DPO_FUA, ...LBA_32, 0, ...LENGTH_16, CONTROL],
    run: readBlocks,
  },
  {
    name: 'WRITE(10)',
    opcode: Opcode.WRITE_10,
    usage: [Opcode.WRITE_10, PROTECT_DPO_FUA, ...LBA_32, 0, ...LENGTH_16, CONTROL],
    run: writeBlocks,
  },
  {
    name: 'WRITE AND VERIFY(10)',
    opcode: Opcode.WRITE_AND_VERIFY_10,
    usage: [Opcode.WRITE_AND_VERIFY_10, PROTECT_DPO_BYTCHK, ...LBA_32, 0, ...LENGTH_16, CONTROL],
    run: writeBlocks,
  },
  {
    name: 'VERIFY(10)',
    opcode: Opcode.VERIFY_10,
    usage: [Opcode.VERIFY_10, VERIFY_FLAGS, ...LBA_32, 0, ...LENGTH_16, CONTROL],
    run: verifyBlocks,
  },
  {
    name: 'PRE-FETCH(10)',
    opcode: Opcode.PRE_FETCH_10,
    usage: [Opcode.PRE_FETCH_10, IMMED, ...LBA_32, 0, ...LENGTH_16, CONTROL],
    run: preFetch,
  },
  {
    name: 'SYNCHRONIZE CACHE(10)',
    opcode: Opcode.SYNCHRONIZE_CACHE_10,
    usage: [Opcode.SYNCHRONIZE_CACHE_10, IMMED, ...LBA_32, 0, ...LENGTH_16, CONTROL],
    run: withSynchronizeCache,
  },
  {
    name: 'WRITE SAME(10)',
    opcode: Opcode.WRITE_SAME_10,
    usage: (geometry) => [Opcode.WRITE_SAME_10, writeSameFlags(geometry, false), ...LBA_32, 0, ...LENGTH_16, CONTROL],
    run: writeSame,
  },
  {
    name: 'UNMAP',
    opcode: Opcode.UNMAP,
    usage: [Opcode.UNMAP, 0, 0, 0, 0, 0, 0, ...LENGTH_16, CONTROL],
    availableOn: isThin,
    run: unmap,
  },
  { name: 'MODE SELECT(10)', opcode: Opcode.MODE_SELECT_10, usage: [Opcode.MODE_SELECT_10, 0x10, 0, 0, 0, 0, 0, ...LENGTH_16, CONTROL] },
  { name: 'RESERVE(10)', opcode: Opcode.RESERVE_10, usage: [Opcode.RESERVE_10, 0, 0, 0, 0, 0, 0, 0, 0, CONTROL] },
  { name: 'RELEASE(10)', opcode: Opcode.RELEASE_10, usage: [Opcode.RELEASE_10, 0, 0, 0, 0, 0, 0, 0, 0, CONTROL] },
  { name: 'MODE SENSE(10)', opcode: Opcode.MODE_SENSE_10, usage: [Opcode.MODE_SENSE_10, 0x08, FF, FF, 0, 0, 0, ...LENGTH_16, CONTROL] },
  ...persistentReserveIn,
  ...persistentReserveOut,
  {
    name: 'READ(16)',
    opcode: Opcode.READ_16,
    usage: [Opcode.READ_16, PROTECT_DPO_FUA, ...LBA_64, ...LENGTH_32, 0, CONTROL],
    run: readBlocks,
  },
  {
    name: 'COMPARE AND WRITE',
    opcode: Opcode.COMPARE_AND_WRITE,
    usage: [Opcode.COMPARE_AND_WRITE, PROTECT_DPO_FUA, ...LBA_64, 0, 0, 0, FF, 0, CONTROL],
    run: compareAndWrite,
  },
  {
    name: 'WRITE(16)',
    opcode: Opcode.WRITE_16,
    usage: [Opcode.WRITE_16, PROTECT_DPO_FUA, ...LBA_64, ...LENGTH_32, 0, CONTROL],
    run: writeBlocks,
  },
  {
    name: 'ORWRITE(16)',
    opcode: Opcode.ORWRITE_16,
    usage: [Opcode.ORWRITE_16, PROTECT_DPO_FUA, ...LBA_64, ...LENGTH_32, 0, CONTROL],
    run: orWrite,
  },
  {
    name: 'WRITE AND VERIFY(16)',
    opcode: Opcode.WRITE_AND_VERIFY_16,
    usage: [Opcode.WRITE_AND_VERIFY_16, PROTECT_DPO_BYTCHK, ...LBA_64, ...LENGTH_32, 0, CONTROL],
    run: writeBlocks,
  },
  {
    name: 'VERIFY(16)',
    opcode: Opcode.VERIFY_16,
    usage: [Opcode.VERIFY_16, VERIFY_FLAGS, ...LBA_64, ...LENGTH_32, 0, CONTROL],
    run: verifyBlocks,
  },
  {
    name: 'PRE-FETCH(16)',
    opcode: Opcode.PRE_FETCH_16,
    usage: [Opcode.PRE_FETCH_16, IMMED, ...LBA_64, ...LENGTH_32, 0, CONTROL],
    run: preFetch,
  },
  {
    name: 'SYNCHRONIZE CACHE(16)',
    opcode: Opcode.SYNCHRONIZE_CACHE_16,
    usage: [Opcode.SYNCHRONIZE_CACHE_16, IMMED, ...LBA_64, ...LENGTH_32, 0, CONTROL],
    run: withSynchronizeCache,
  },
  {
    name: 'WRITE SAME(16)',
    opcode: Opcode.WRITE_SAME_16,
    usage: (geometry) => [Opcode.WRITE_SAME_16, writeSameFlags(geometry, true), ...LBA_64, ...LENGTH_32, 0, CONTROL],
    run: writeSame,
  },
  {
    name: 'READ CAPACITY(16)',
    opcode: Opcode.SERVICE_ACTION_IN_16,
    serviceAction: ServiceActionIn16.READ_CAPACITY_16,
    // The LBA and PMI fields are obsolete in SBC-3 and ignored.
    usage: [Opcode.SERVICE_ACTION_IN_16, ServiceActionIn16.READ_CAPACITY_16, 0, 0, 0, 0, 0, 0, 0, 0, ...LENGTH_32, 0, CONTROL],
  },
  {
    name: 'GET LBA STATUS',
    opcode: Opcode.SERVICE_ACTION_IN_16,
    serviceAction: ServiceActionIn16.GET_LBA_STATUS,
    usage: [Opcode.SERVICE_ACTION_IN_16, ServiceActionIn16.GET_LBA_STATUS, ...LBA_64, ...LENGTH_32, 0, CONTROL],
  },
  { name: 'REPORT LUNS', opcode: Opcode.REPORT_LUNS, usage: [Opcode.REPORT_LUNS, 0, FF, 0, 0, 0, ...LENGTH_32, 0, CONTROL] },
  {
    name: 'REPORT SUPPORTED OPERATION CODES',
    opcode: Opcode.MAINTENANCE_IN,
    serviceAction: MaintenanceIn.REPORT_SUPPORTED_OPERATION_CODES,
    // RCTD (byte 2 bit 7), REPORTING OPTIONS (bits 2-0), REQUESTED OPERATION CODE and SERVICE ACTION.
    usage: [Opcode.MAINTENANCE_IN, MaintenanceIn.REPORT_SUPPORTED_OPERATION_CODES, 0x87, FF, FF, FF, ...LENGTH_32, 0, CONTROL],
    run: reportOpcodes,
  },
  {
    name: 'READ(12)',
    opcode: Opcode.READ_12,
    usage: [Opcode.READ_12, PROTECT_DPO_FUA, ...LBA_32, ...LENGTH_32, 0, CONTROL],
    run: readBlocks,
  },
  {
    name: 'WRITE(12)',
    opcode: Opcode.WRITE_12,
    usage: [Opcode.WRITE_12, PROTECT_DPO_FUA, ...LBA_32, ...LENGTH_32, 0, CONTROL],
    run: writeBlocks,
  },
  {
    name: 'WRITE AND VERIFY(12)',
    opcode: Opcode.WRITE_AND_VERIFY_12,
    usage: [Opcode.WRITE_AND_VERIFY_12, PROTECT_DPO_BYTCHK, ...LBA_32, ...LENGTH_32, 0, CONTROL],
    run: writeBlocks,
  },
  {
    name: 'VERIFY(12)',
    opcode: Opcode.VERIFY_12,
    usage: [Opcode.VERIFY_12, VERIFY_FLAGS, ...LBA_32, ...LENGTH_32, 0, CONTROL],
    run: verifyBlocks,
  },
];
