import type { PlinthErrorCode } from '../common/plinth-error.js';

/**
 * The one table PlinthError code → HTTP status of the REST boundary
 * (STYLE.md habit 6). Codes not listed are server faults: 500, and logged.
 */
const HTTP_STATUS_BY_CODE: Readonly<Partial<Record<PlinthErrorCode, number>>> = {
  INVALID_NAME: 400,
  INVALID_SIZE: 400,
  INVALID_ARGUMENT: 400,
  CONFIG_INVALID: 400,
  TOO_LARGE: 400,
  INVALID_JSON: 400,
  UNAUTHORIZED: 401,
  VOLUME_NOT_FOUND: 404,
  NOT_FOUND: 404,
  NODE_NOT_FOUND: 404,
  VOLUME_EXISTS: 409,
  VOLUME_ATTACHED: 409,
  LAST_IN_SYNC_REPLICA: 409,
  BODY_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  NO_SPACE: 507,
  NOT_LEADER: 503,
  SHUTTING_DOWN: 503,
  BUSY: 503,
  // Issue 7: the volume is unavailable until a replica holding its latest data returns.
  NO_CURRENT_REPLICA: 503,
  TIMEOUT: 504,
  // Issue 8 (daemon/snapshots): unknown snapshot, a duplicate name, a racing new owner's generation.
  SNAPSHOT_NOT_FOUND: 404,
  SNAPSHOT_EXISTS: 409,
  SNAPSHOT_OPEN: 409,
  SNAPSHOT_LIMIT: 507,
  FENCED: 409,
  // Issue 8 send/receive (daemon/snapshots/send-stream-*): a refused stream is the client's; a receive that does not fit its target conflicts.
  STREAM_BAD_MAGIC: 400,
  STREAM_BAD_VERSION: 400,
  STREAM_MALFORMED: 400,
  STREAM_CHECKSUM_MISMATCH: 400,
  STREAM_TRUNCATED: 400,
  STREAM_OUT_OF_ORDER: 400,
  STREAM_OUT_OF_RANGE: 400,
  RECEIVE_CONFLICT: 409,
};

export const INTERNAL_SERVER_ERROR = 500;

export function httpStatusForCode(code: PlinthErrorCode): number {
  return HTTP_STATUS_BY_CODE[code] ?? INTERNAL_SERVER_ERROR;
}

export interface ErrorBody {
  readonly error: {
    readonly code: string;
    readonly message: string;
    readonly details?: Readonly<Record<string, unknown>>;
  };
}

export function errorBody(code: string, message: string, details?: Readonly<Record<string, unknown>>): ErrorBody {
  const hasDetails = details !== undefined && Object.keys(details).length > 0;
  return { error: hasDetails ? { code, message, details } : { code, message } };
}
