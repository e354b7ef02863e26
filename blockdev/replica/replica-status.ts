import { isPlinthError, PlinthError, type PlinthErrorCode } from '../../common/plinth-error.js';
import { MAX_ERROR_MESSAGE_BYTES, Status } from './replica-protocol.js';

/**
 * The one mapping table of the replication boundary: PlinthError code ↔ reply
 * status. The server turns a failure into a status plus message; the client
 * turns it back into a PlinthError with the same code.
 */

const STATUS_BY_CODE: Partial<Record<PlinthErrorCode, Status>> = {
  FENCED: Status.FENCED,
  IO_ERROR: Status.IO_ERROR,
  OUT_OF_RANGE: Status.OUT_OF_RANGE,
  INVALID_ARGUMENT: Status.INVALID_ARGUMENT,
  INVALID_SIZE: Status.INVALID_ARGUMENT,
  INVALID_NAME: Status.INVALID_ARGUMENT,
  NOT_SUPPORTED: Status.NOT_SUPPORTED,
  NO_SPACE: Status.NO_SPACE,
  UNAUTHORIZED: Status.UNAUTHORIZED,
  BUSY: Status.BUSY,
  SHUTTING_DOWN: Status.SHUTTING_DOWN,
  TOO_LARGE: Status.TOO_LARGE,
  READ_ONLY: Status.NOT_SUPPORTED,
  SNAPSHOT_NOT_FOUND: Status.SNAPSHOT_NOT_FOUND,
  VOLUME_NOT_FOUND: Status.VOLUME_NOT_FOUND,
  VOLUME_ATTACHED: Status.VOLUME_ATTACHED,
  VOLUME_EXISTS: Status.VOLUME_EXISTS,
  SNAPSHOT_OPEN: Status.SNAPSHOT_OPEN,
  SNAPSHOT_LIMIT: Status.SNAPSHOT_LIMIT,
};

const CODE_BY_STATUS: Record<Exclude<Status, typeof Status.OK>, PlinthErrorCode> = {
  [Status.FENCED]: 'FENCED',
  [Status.IO_ERROR]: 'IO_ERROR',
  [Status.OUT_OF_RANGE]: 'OUT_OF_RANGE',
  [Status.INVALID_ARGUMENT]: 'INVALID_ARGUMENT',
  [Status.NOT_SUPPORTED]: 'NOT_SUPPORTED',
  [Status.NO_SPACE]: 'NO_SPACE',
  [Status.NOT_OPEN]: 'INVALID_ARGUMENT',
  [Status.UNAUTHORIZED]: 'UNAUTHORIZED',
  [Status.BUSY]: 'BUSY',
  [Status.SHUTTING_DOWN]: 'SHUTTING_DOWN',
  [Status.TOO_LARGE]: 'TOO_LARGE',
  [Status.SNAPSHOT_NOT_FOUND]: 'SNAPSHOT_NOT_FOUND',
  [Status.VOLUME_NOT_FOUND]: 'VOLUME_NOT_FOUND',
  [Status.VOLUME_ATTACHED]: 'VOLUME_ATTACHED',
  [Status.VOLUME_EXISTS]: 'VOLUME_EXISTS',
  [Status.SNAPSHOT_OPEN]: 'SNAPSHOT_OPEN',
  [Status.SNAPSHOT_LIMIT]: 'SNAPSHOT_LIMIT',
};

/** Anything not in the table (INTERNAL, METADATA_CORRUPT, plain Errors) is an I/O error for the controller. */
export function statusOfError(err: unknown): Status {
  if (isPlinthError(err)) return STATUS_BY_CODE[err.code] ?? Status.IO_ERROR;
  return Status.IO_ERROR;
}

export function errorMessagePayload(err: unknown): Buffer {
  const message = err instanceof Error ? err.message : String(err);
  const bytes = Buffer.from(message, 'utf8');
  return bytes.length <= MAX_ERROR_MESSAGE_BYTES ? bytes : bytes.subarray(0, MAX_ERROR_MESSAGE_BYTES);
}

/** A non-OK reply as the PlinthError the client's caller sees. */
export function errorOfStatus(status: Exclude<Status, typeof Status.OK>, message: string, details: Readonly<Record<string, unknown>>): PlinthError {
  return new PlinthError(CODE_BY_STATUS[status], `replica: ${message}`, { ...details, status });
}
