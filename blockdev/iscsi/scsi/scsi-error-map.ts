import { isPlinthError, type PlinthErrorCode } from '../../../common/plinth-error.js';
import { Asc, type SenseInfo, SenseKey } from './scsi-sense.js';

/**
 * The SCSI boundary's one error table (STYLE habit 6): a PlinthError a
 * BlockDevice call threw → sense data. Codes meaning the device is gone
 * (FENCED, SHUTTING_DOWN) map to undefined: the session rejects and the
 * transport drops the connection, so the initiator reconnects (possibly to
 * the volume's new owner) instead of seeing an I/O error.
 */

export type DeviceOperation = 'read' | 'write';

const SENSE_BY_CODE: Partial<Record<PlinthErrorCode, SenseInfo>> = {
  OUT_OF_RANGE: { senseKey: SenseKey.ILLEGAL_REQUEST, asc: Asc.LBA_OUT_OF_RANGE },
  INVALID_ARGUMENT: { senseKey: SenseKey.ILLEGAL_REQUEST, asc: Asc.INVALID_FIELD_IN_CDB },
  TOO_LARGE: { senseKey: SenseKey.ILLEGAL_REQUEST, asc: Asc.INVALID_FIELD_IN_CDB },
  NOT_SUPPORTED: { senseKey: SenseKey.ILLEGAL_REQUEST, asc: Asc.INVALID_FIELD_IN_CDB },
  READ_ONLY: { senseKey: SenseKey.DATA_PROTECT, asc: Asc.WRITE_PROTECTED },
  // SBC-3 §4.7.3.6: a thin device out of space reports SPACE ALLOCATION FAILED WRITE PROTECT.
  NO_SPACE: { senseKey: SenseKey.DATA_PROTECT, asc: Asc.SPACE_ALLOCATION_FAILED_WRITE_PROTECT },
  // Retryable: Linux retries ABORTED COMMAND; the replicated device may recover (failover, rebuild).
  TIMEOUT: { senseKey: SenseKey.ABORTED_COMMAND, asc: Asc.NO_ADDITIONAL_SENSE },
  BUSY: { senseKey: SenseKey.ABORTED_COMMAND, asc: Asc.NO_ADDITIONAL_SENSE },
  NO_CURRENT_REPLICA: { senseKey: SenseKey.NOT_READY, asc: Asc.LOGICAL_UNIT_NOT_READY_MANUAL_INTERVENTION },
};

const DEVICE_GONE: ReadonlySet<PlinthErrorCode> = new Set<PlinthErrorCode>(['FENCED', 'SHUTTING_DOWN']);

export interface SenseMapping {
  /** undefined: the device is gone; reject so the transport drops the connection. */
  readonly sense: SenseInfo | undefined;
  /** False when the error was not in the table: the caller logs it as unexpected. */
  readonly expected: boolean;
}

export function senseForDeviceError(error: unknown, operation: DeviceOperation): SenseMapping {
  if (isPlinthError(error)) {
    if (DEVICE_GONE.has(error.code)) {
      return { sense: undefined, expected: true };
    }
    if (error.code === 'IO_ERROR') {
      const asc = operation === 'read' ? Asc.UNRECOVERED_READ_ERROR : Asc.WRITE_ERROR;
      return { sense: { senseKey: SenseKey.MEDIUM_ERROR, asc }, expected: true };
    }
    const sense = SENSE_BY_CODE[error.code];
    if (sense !== undefined) {
      return { sense, expected: true };
    }
  }
  return { sense: { senseKey: SenseKey.HARDWARE_ERROR, asc: Asc.INTERNAL_TARGET_FAILURE }, expected: false };
}
