import { isDeepStrictEqual } from 'node:util';
import type pino from 'pino';
import { PlinthError, toError } from '../../../common/plinth-error.js';
import type { BlockDevice } from '../../block-device.js';
import type { BlockCommandContext } from './scsi-block-commands.js';
import { runBlockCommand } from './scsi-block-dispatch.js';
import { accessKindOf, allowedUnderLegacyReservation, bypassesUnitAttention } from './scsi-command-access.js';
import { senseForDeviceError } from './scsi-error-map.js';
import { inquiryData, type LogicalUnitIdentity } from './scsi-inquiry.js';
import type { LogicalUnitState } from './scsi-logical-unit-state.js';
import { applyModeSelect, modeSelectParameterLength, modeSenseData } from './scsi-mode-pages.js';
import { Opcode, ServiceActionIn16 } from './scsi-opcodes.js';
import { nexusKeyOf, type PersistentReservations } from './scsi-persistent-reservations.js';
import {
  decodePrevent,
  decodeStartStopUnit,
  inquiryForMissingLun,
  mediumRemovalPrevented,
  reportLuns,
  requestSenseData,
} from './scsi-primary-commands.js';
import { getLbaStatus, readCapacity10, readCapacity16 } from './scsi-provisioning-commands.js';
import { reservationCommitFailure } from './scsi-reservation-store.js';
import { Asc, encodeSense, illegalRequest, invalidFieldInCdb, ScsiCheckCondition, type SenseInfo } from './scsi-sense.js';
import {
  type InitiatorPort,
  ScsiStatus,
  type ScsiLogicalUnitSession,
  type ScsiOutcome,
  type ScsiResponse,
  type ScsiTask,
  type TaskManagementFunction,
  type TaskManagementResult,
} from './scsi-task.js';

/**
 * One session's view of LUN 0 of a volume: the command dispatcher. Order of
 * checks per SAM-5 §5.14 / SPC-4 §5.9.1: LUN, unit attention, reservation
 * conflict, then the command's own CDB validation and I/O.
 */

const GOOD: ScsiResponse = { status: ScsiStatus.GOOD };
const RESERVATION_CONFLICT: ScsiResponse = { status: ScsiStatus.RESERVATION_CONFLICT };
const TASK_SET_FULL: ScsiResponse = { status: ScsiStatus.TASK_SET_FULL };

export interface LogicalUnitSessionModules {
  readonly state: LogicalUnitState;
  readonly device: BlockDevice;
  readonly identity: LogicalUnitIdentity;
  readonly logger: pino.Logger;
}

/** Cut data-in to the CDB's allocation length (SPC-4 §4.2.5.6: not an error, no residual of its own). */
function dataInResponse(data: Buffer, allocationLength: number): ScsiResponse {
  return { status: ScsiStatus.GOOD, dataIn: data.length > allocationLength ? data.subarray(0, allocationLength) : data };
}

export class LogicalUnitSession implements ScsiLogicalUnitSession {
  private readonly state: LogicalUnitState;
  private readonly device: BlockDevice;
  private readonly identity: LogicalUnitIdentity;
  private readonly logger: pino.Logger;
  private readonly nexusKey: string;
  private readonly nexus: InitiatorPort;
  private readonly blockContext: BlockCommandContext;
  private closed = false;

  constructor(nexus: InitiatorPort, modules: LogicalUnitSessionModules) {
    this.state = modules.state;
    this.device = modules.device;
    this.identity = modules.identity;
    this.logger = modules.logger;
    this.nexus = nexus;
    this.nexusKey = nexusKeyOf(nexus);
    this.blockContext = {
      device: modules.device,
      geometry: modules.state.geometry,
      mode: modules.state.mode,
      rangeLock: modules.state.rangeLock,
    };
    this.state.addNexus(this.nexusKey);
  }

  /** Answers at once when the command completes synchronously (ScsiOutcome says why). */
  execute(task: ScsiTask): ScsiOutcome {
    if (this.closed) {
      throw new PlinthError('SHUTTING_DOWN', 'the SCSI session is closed', { nexus: this.nexusKey });
    }
    let outcome: ScsiOutcome;
    try {
      outcome = this.dispatch(task);
    } catch (error) {
      return this.failed(error, task);
    }
    return outcome instanceof Promise ? outcome.catch((error: unknown) => this.failed(error, task)) : outcome;
  }

  /** A command's failure as CHECK CONDITION; rethrown when it means the device is gone. */
  private failed(error: unknown, task: ScsiTask): ScsiResponse {
    if (error instanceof ScsiCheckCondition) {
      return this.checkCondition(error.sense);
    }
    const opcode = task.cdb[0] ?? 0;
    const mapping = senseForDeviceError(error, accessKindOf(opcode) === 'write' ? 'write' : 'read');
    if (mapping.sense === undefined) {
      throw error;
    }
    const log = { err: toError(error), opcode, nexus: this.nexusKey };
    if (mapping.expected) {
      this.logger.info(log, 'SCSI command failed on the device');
    } else {
      this.logger.error(log, 'unexpected error in the SCSI device server');
    }
    return this.checkCondition(mapping.sense);
  }

  private checkCondition(sense: SenseInfo): ScsiResponse {
    return { status: ScsiStatus.CHECK_CONDITION, sense: encodeSense(sense, this.state.mode.descriptorSense) };
  }

  private dispatch(task: ScsiTask): ScsiOutcome {
    const opcode = task.cdb[0] ?? 0;
    if (task.lun !== 0) {
      return this.dispatchMissingLun(task);
    }
    if (!bypassesUnitAttention(opcode)) {
      const attention = this.state.takeUnitAttention(this.nexusKey);
      if (attention !== undefined) {
        return this.checkCondition(attention);
      }
    }
    if (this.conflicts(opcode)) {
      return RESERVATION_CONFLICT;
    }
    return this.run(task, opcode);
  }

  private conflicts(opcode: number): boolean {
    const holder = this.state.legacyReservationHolder;
    if (holder !== undefined && holder !== this.nexusKey && !allowedUnderLegacyReservation(opcode)) {
      return true;
    }
    return !this.state.reservations.allows(this.nexusKey, accessKindOf(opcode));
  }

  private dispatchMissingLun(task: ScsiTask): ScsiResponse {
    switch (task.cdb[0]) {
      case Opcode.INQUIRY:
        return dataInResponse(inquiryForMissingLun(this.inquiry(task.cdb)), task.cdb.readUInt16BE(3));
      case Opcode.REPORT_LUNS:
        return dataInResponse(reportLuns(task.cdb), task.cdb.readUInt32BE(6));
      default:
        throw illegalRequest(Asc.LOGICAL_UNIT_NOT_SUPPORTED);
    }
  }

  private inquiry(cdb: Buffer): Buffer {
    return inquiryData(cdb, this.identity, this.state.geometry);
  }

  /** SBC-3 data commands first (scsi-block-dispatch.ts), then the SPC-4 ones here. */
  private run(task: ScsiTask, opcode: number): ScsiOutcome {
    const block = runBlockCommand(this.blockContext, task);
    if (block !== undefined) {
      return block;
    }
    const { cdb } = task;
    switch (opcode) {
      case Opcode.TEST_UNIT_READY:
        return GOOD;
      case Opcode.INQUIRY:
        return dataInResponse(this.inquiry(cdb), cdb.readUInt16BE(3));
      case Opcode.REQUEST_SENSE: {
        const pending = this.state.takeUnitAttention(this.nexusKey);
        return dataInResponse(requestSenseData(cdb, pending, this.state.mode.descriptorSense), cdb[4] ?? 0);
      }
      case Opcode.REPORT_LUNS:
        return dataInResponse(reportLuns(cdb), cdb.readUInt32BE(6));
      case Opcode.READ_CAPACITY_10:
        return dataInResponse(readCapacity10(this.state.geometry, cdb), 8);
      case Opcode.SERVICE_ACTION_IN_16:
        return this.serviceActionIn16(task);
      case Opcode.MODE_SENSE_6:
        return dataInResponse(modeSenseData(cdb, this.state.geometry, this.state.mode), cdb[4] ?? 0);
      case Opcode.MODE_SENSE_10:
        return dataInResponse(modeSenseData(cdb, this.state.geometry, this.state.mode), cdb.readUInt16BE(7));
      case Opcode.MODE_SELECT_6:
      case Opcode.MODE_SELECT_10:
        return this.modeSelect(task);
      case Opcode.PERSISTENT_RESERVE_IN:
        return dataInResponse(this.state.reservations.reserveIn(cdb), cdb.readUInt16BE(7));
      case Opcode.PERSISTENT_RESERVE_OUT:
        return this.persistentReserveOut(task);
      case Opcode.RESERVE_6:
      case Opcode.RESERVE_10:
        return this.reserve();
      case Opcode.RELEASE_6:
      case Opcode.RELEASE_10:
        if (this.state.legacyReservationHolder === this.nexusKey) {
          this.state.legacyReservationHolder = undefined;
        }
        return GOOD;
      case Opcode.START_STOP_UNIT:
        return this.startStopUnit(cdb);
      case Opcode.PREVENT_ALLOW_MEDIUM_REMOVAL:
        return this.preventAllow(cdb);
      default:
        throw illegalRequest(Asc.INVALID_COMMAND_OPERATION_CODE);
    }
  }

  private serviceActionIn16(task: ScsiTask): ScsiOutcome {
    const serviceAction = (task.cdb[1] ?? 0) & 0x1f;
    switch (serviceAction) {
      case ServiceActionIn16.READ_CAPACITY_16:
        return dataInResponse(readCapacity16(this.state.geometry), task.cdb.readUInt32BE(10));
      case ServiceActionIn16.GET_LBA_STATUS:
        return getLbaStatus(this.blockContext, task);
      default:
        throw invalidFieldInCdb(1, 4);
    }
  }

  private modeSelect(task: ScsiTask): ScsiResponse {
    const length = modeSelectParameterLength(task.cdb);
    const parameters = (task.dataOut ?? Buffer.alloc(0)).subarray(0, length);
    if (parameters.length < length) {
      throw illegalRequest(Asc.PARAMETER_LIST_LENGTH_ERROR);
    }
    applyModeSelect(task.cdb, parameters, this.state.geometry, this.state.mode);
    return GOOD;
  }

  /**
   * PERSISTENT RESERVE OUT (SPC-4 §6.16), one at a time per volume on this
   * node: compute the new state on a copy, commit it to the reservation
   * store, and only then make it current, send the unit attentions and
   * answer GOOD. A failed commit leaves the state as it was (the command
   * had no effect) and answers as reservationCommitFailure says.
   */
  private async persistentReserveOut(task: ScsiTask): Promise<ScsiResponse> {
    const change = this.state.serialiseReservationChange(async () => {
      const next = this.state.reservations.clone();
      const outcome = next.reserveOut(this.nexus, task.cdb, task.dataOut ?? Buffer.alloc(0));
      if (outcome.conflict) {
        return RESERVATION_CONFLICT;
      }
      await this.commitReservations(next);
      this.state.reservations = next;
      for (const notice of outcome.notices) {
        this.state.queueUnitAttention(notice.nexusKey, notice.asc);
      }
      return GOOD;
    });
    return change ?? TASK_SET_FULL;
  }

  private async commitReservations(next: PersistentReservations): Promise<void> {
    const store = this.state.reservationStore;
    if (store === undefined) {
      return;
    }
    const image = next.toImage();
    // A PR OUT that changes nothing (RELEASE without a reservation ...) needs no Raft entry.
    if (isDeepStrictEqual(image, this.state.reservations.toImage())) {
      return;
    }
    try {
      await store.commit(this.identity.volumeId, image);
    } catch (error) {
      throw reservationCommitFailure(error, this.logger, this.identity.volumeId);
    }
  }

  /** RESERVE(6)/(10), SPC-2 §7.21: refused while persistent reservations are in use (SPC-4 §5.9.3). */
  private reserve(): ScsiResponse {
    const holder = this.state.legacyReservationHolder;
    if ((holder !== undefined && holder !== this.nexusKey) || this.state.reservations.hasRegistrations()) {
      return RESERVATION_CONFLICT;
    }
    this.state.legacyReservationHolder = this.nexusKey;
    return GOOD;
  }

  private startStopUnit(cdb: Buffer): ScsiResponse {
    const request = decodeStartStopUnit(cdb);
    if (request.loadEject && !request.start && this.state.preventingNexuses.size > 0) {
      throw mediumRemovalPrevented();
    }
    return GOOD;
  }

  private preventAllow(cdb: Buffer): ScsiResponse {
    if (decodePrevent(cdb)) {
      this.state.preventingNexuses.add(this.nexusKey);
    } else {
      this.state.preventingNexuses.delete(this.nexusKey);
    }
    return GOOD;
  }

  async taskManagement(fn: TaskManagementFunction): Promise<TaskManagementResult> {
    switch (fn) {
      case 'abort-task-set':
      case 'clear-task-set':
        return 'complete';
      case 'clear-aca':
        // NACA is never set in our INQUIRY data, so no ACA condition can exist (SAM-5 §5.9).
        return 'not-supported';
      case 'lun-reset':
        this.state.reset(Asc.BUS_DEVICE_RESET);
        return 'complete';
      case 'target-warm-reset':
      case 'target-cold-reset':
        this.state.reset(Asc.POWER_ON_RESET);
        return 'complete';
    }
  }

  close(): void {
    if (this.closed) {
      return;
    }
    this.closed = true;
    if (this.state.removeNexus(this.nexusKey)) {
      this.state.nexusLost(this.nexusKey);
    }
  }
}
