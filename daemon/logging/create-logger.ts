import { pino, type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from '../config/config-types.js';

/**
 * JSON lines on stdout (or `destination` in tests), ISO timestamps so logs
 * from several nodes sort together. Errors go through pino's `err`
 * serializer so their code and cause are kept. CHAP secrets (a Config's
 * `iscsiChap`, a volume record's `chap`, any `secret`/`targetSecret` field up
 * to three levels deep) are censored should anything ever log them.
 */
export const REDACTED_LOG_PATHS = [
  'iscsiChap',
  '*.iscsiChap',
  'secret',
  'targetSecret',
  '*.secret',
  '*.targetSecret',
  '*.*.secret',
  '*.*.targetSecret',
  '*.*.*.secret',
  '*.*.*.targetSecret',
];

export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  const options = {
    level,
    redact: { paths: REDACTED_LOG_PATHS, censor: '[redacted]' },
    base: { service: 'plinthd', pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return destination === undefined ? pino(options) : pino(options, destination);
}
