import { PlinthError } from '../../common/plinth-error.js';

/**
 * The one mapping from OS errors on a pool disk to PlinthError codes.
 * ENOSPC (and its cousins EDQUOT/EFBIG, which NBD proto.md "Error values"
 * also maps to ENOSPC) from the host filesystem under a sparse file disk
 * become NO_SPACE; everything else is IO_ERROR with the errno attached.
 */
const NO_SPACE_ERRNO_CODES: ReadonlySet<string> = new Set(['ENOSPC', 'EDQUOT', 'EFBIG']);

export interface DiskErrorContext {
  readonly path: string;
  readonly operation: string;
  readonly position?: number;
  readonly lengthBytes?: number;
}

export function toDiskError(err: unknown, context: DiskErrorContext): PlinthError {
  if (err instanceof PlinthError) {
    return err;
  }
  const errno = err as NodeJS.ErrnoException;
  const code = typeof errno.code === 'string' ? errno.code : 'UNKNOWN';
  const details = {
    ...context,
    errno: typeof errno.errno === 'number' ? errno.errno : null,
    errnoCode: code,
  };
  const message = err instanceof Error ? err.message : String(err);
  if (NO_SPACE_ERRNO_CODES.has(code)) {
    return new PlinthError('NO_SPACE', `disk ${context.path}: ${context.operation} failed, host filesystem is full (${code})`, details, { cause: err });
  }
  return new PlinthError('IO_ERROR', `disk ${context.path}: ${context.operation} failed: ${message}`, details, { cause: err });
}
