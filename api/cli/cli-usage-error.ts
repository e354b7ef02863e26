/** A mistake on the command line: exit code 2 and the usage text. */
export class CliUsageError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CliUsageError';
  }
}

/** The CLI's own set-up failed (no token found, unreadable token file): exit code 1. */
export class CliSetupError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CliSetupError';
  }
}
