/**
 * Errors the typed client throws. `code` is the server's stable PlinthError
 * code (a plain string: a newer daemon may send codes this client predates).
 */
export class PlinthApiError extends Error {
  readonly code: string;
  /** HTTP status of the response. */
  readonly status: number;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: string, status: number, message: string, details: Readonly<Record<string, unknown>> = {}) {
    super(message);
    this.name = 'PlinthApiError';
    this.code = code;
    this.status = status;
    this.details = details;
  }
}

export type PlinthConnectionErrorCode = 'UNREACHABLE' | 'TIMEOUT';

/** The daemon could not be reached or did not answer in time: no HTTP status exists. */
export class PlinthConnectionError extends Error {
  readonly code: PlinthConnectionErrorCode;
  readonly url: string;

  constructor(code: PlinthConnectionErrorCode, url: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PlinthConnectionError';
    this.code = code;
    this.url = url;
  }
}
