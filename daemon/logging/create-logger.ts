import { pino, type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from '../config/config-types.js';

/**
 * JSON lines on stdout (or `destination` in tests), ISO timestamps so logs
 * from several nodes sort together. Errors go through pino's `err`
 * serializer so their code and cause are kept.
 */
export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { service: 'plinthd', pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return destination === undefined ? pino(options) : pino(options, destination);
}
