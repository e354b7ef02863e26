/**
 * The one base error of Plinth. Every error that crosses a module boundary is
 * a PlinthError with a stable `code` and typed `details`, so each boundary
 * (NBD errno, SCSI sense, HTTP status) maps errors by code in one table
 * instead of matching message strings.
 */
export type PlinthErrorCode =
  // data path
  | 'OUT_OF_RANGE'
  | 'NO_SPACE'
  | 'IO_ERROR'
  | 'READ_ONLY'
  | 'NOT_SUPPORTED'
  | 'INVALID_ARGUMENT'
  | 'TOO_LARGE'
  | 'SHUTTING_DOWN'
  // pool / disks
  | 'DISK_FOREIGN'
  | 'DISK_CORRUPT'
  | 'DISK_WRONG_POOL'
  | 'DISK_MISSING'
  // control plane
  | 'VOLUME_NOT_FOUND'
  | 'VOLUME_EXISTS'
  | 'VOLUME_ATTACHED'
  | 'INVALID_NAME'
  | 'INVALID_SIZE'
  | 'CONFIG_INVALID'
  | 'DATA_DIR_LOCKED'
  | 'UNAUTHORIZED'
  | 'NOT_LEADER'
  | 'TIMEOUT'
  | 'FENCED'
  | 'INTERNAL';

export class PlinthError extends Error {
  readonly code: PlinthErrorCode;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(
    code: PlinthErrorCode,
    message: string,
    details: Readonly<Record<string, unknown>> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'PlinthError';
    this.code = code;
    this.details = details;
  }
}

export function isPlinthError(err: unknown, code?: PlinthErrorCode): err is PlinthError {
  return err instanceof PlinthError && (code === undefined || err.code === code);
}

/** Narrow an unknown thrown value to an Error so it can be logged or wrapped. */
export function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
