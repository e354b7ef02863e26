import { pino, type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from '../config/config-types.js';
import type { LogRing } from './log-ring.js';
import { currentRequestId, REQUEST_ID_LOG_KEY } from './request-context.js';

/**
 * JSON lines on stdout (or `destination` in tests), ISO timestamps so logs
 * from several nodes sort together. Errors go through pino's `err`
 * serializer so their code and cause are kept. CHAP secrets (a Config's
 * `iscsiChap`, a volume record's `chap`, any `secret`/`targetSecret` field up
 * to three levels deep), the TLS join token (a Config's `joinToken`, a join
 * grant's) and private keys handed out (`clientKey`, `caKeyPem`) are
 * censored should anything ever log them.
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
  'joinToken',
  '*.joinToken',
  '*.*.joinToken',
  '*.*.*.joinToken',
  'clientKey',
  '*.clientKey',
  'caKeyPem',
  '*.caKeyPem',
  '*.*.caKeyPem',
];

export interface CreateLoggerOptions {
  /** Also keep the recent lines in this ring (support bundle, daemon/support/). */
  readonly ring?: LogRing;
}

export function createLogger(level: LogLevel, destination?: DestinationStream, options: CreateLoggerOptions = {}): Logger {
  const loggerOptions = {
    level,
    redact: { paths: REDACTED_LOG_PATHS, censor: '[redacted]' },
    base: { service: 'plinthd', pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    mixin: requestIdMixin,
  };
  const primary = destination ?? pino.destination({ dest: 1, sync: true });
  if (options.ring === undefined || level === 'silent') return pino(loggerOptions, primary);
  // Both streams at the logger's own level: the ring holds exactly what stdout shows.
  return pino(loggerOptions, pino.multistream([{ level, stream: primary }, { level, stream: options.ring }]));
}

/**
 * Every line logged on behalf of a control operation carries its id under
 * one key (request-context.ts); fastify's request loggers already bind it
 * (api/request-id.ts sets the same label), so it is not added twice.
 */
function requestIdMixin(mergeObject: object, _level: number, logger: Logger): object {
  const requestId = currentRequestId();
  if (requestId === undefined || REQUEST_ID_LOG_KEY in mergeObject) return {};
  if (REQUEST_ID_LOG_KEY in logger.bindings()) return {};
  return { [REQUEST_ID_LOG_KEY]: requestId };
}
