import { isIP } from 'node:net';
import { isPlinthError } from '../../common/plinth-error.js';
import { formatSize, parseSize } from '../../common/sizes.js';
import { MAX_EXTENT_SIZE_BYTES, MIN_EXTENT_SIZE_BYTES } from '../../blockdev/pool/open-pool.js';
import type { DiskSpec } from '../../blockdev/pool/pool-types.js';
import { LOG_LEVELS, type HostPort, type LogLevel } from './config-types.js';

/**
 * Parsers for single setting values. Each returns the parsed value or throws
 * SettingRejected with the reason only; the resolver knows the key, source
 * and value and turns it into one CONFIG_INVALID naming all of them.
 */
export class SettingRejected extends Error {
  override readonly name = 'SettingRejected';
}

const HOSTNAME_PATTERN = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** "HOST:PORT" or "[IPv6]:PORT"; port 1..65535. */
export function parseHostPort(text: string): HostPort {
  const expected = 'expected HOST:PORT (e.g. 127.0.0.1:9700 or [::1]:9700)';
  const bracketed = /^\[([^\]]+)\]:(\d{1,5})$/.exec(text);
  const plain = /^([^:[\]]+):(\d{1,5})$/.exec(text);
  const match = bracketed ?? plain;
  const host = match?.[1];
  const portText = match?.[2];
  if (host === undefined || portText === undefined) throw new SettingRejected(expected);
  if (bracketed && isIP(host) !== 6) throw new SettingRejected(`"${host}" is not an IPv6 address; ${expected}`);
  if (!bracketed && isIP(host) !== 4 && !HOSTNAME_PATTERN.test(host)) {
    throw new SettingRejected(`"${host}" is not a valid host name or IPv4 address; ${expected}`);
  }
  const port = Number(portText);
  if (port < 1 || port > 65535) throw new SettingRejected(`port ${port} is out of range 1..65535`);
  return { host, port };
}

/**
 * "PATH[:SIZE]". The size is what follows the last ':' when it looks like a
 * size (digits, then maybe a unit), so by-path device names containing ':'
 * still work.
 */
export function parseDisk(text: string): DiskSpec {
  const colon = text.lastIndexOf(':');
  const tail = colon >= 0 ? text.slice(colon + 1) : '';
  if (colon < 0 || !/^\d+(?:\.\d+)?\s*[A-Za-z]*$/.test(tail)) {
    if (text.length === 0) throw new SettingRejected('expected PATH[:SIZE]');
    return { path: text };
  }
  const path = text.slice(0, colon);
  if (path.length === 0) throw new SettingRejected('expected PATH[:SIZE]: the path is empty');
  const sizeBytes = parseSizeOrReject(tail);
  if (sizeBytes <= 0) throw new SettingRejected('disk size must be greater than 0');
  return { path, sizeBytes };
}

/** The pool's own bounds, checked here too so the error names the setting. */
export function parseExtentSize(text: string): number {
  const sizeBytes = parseSizeOrReject(text);
  if (sizeBytes < MIN_EXTENT_SIZE_BYTES || (sizeBytes & (sizeBytes - 1)) !== 0 || sizeBytes > MAX_EXTENT_SIZE_BYTES) {
    throw new SettingRejected(
      `expected a power of two between ${formatSize(MIN_EXTENT_SIZE_BYTES)} and ${formatSize(MAX_EXTENT_SIZE_BYTES)}, e.g. 4MiB`,
    );
  }
  return sizeBytes;
}

export function parseLogLevel(text: string): LogLevel {
  const level = LOG_LEVELS.find((candidate) => candidate === text);
  if (level === undefined) throw new SettingRejected(`expected one of ${LOG_LEVELS.join(', ')}`);
  return level;
}

const NODE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;

/** Node ids are host-name-like so the default (the hostname) is always one. */
export function isValidNodeId(text: string): boolean {
  return NODE_ID_PATTERN.test(text);
}

export function parseNodeId(text: string): string {
  if (!isValidNodeId(text)) {
    throw new SettingRejected('expected 1-253 characters of letters, digits, ".", "_" or "-", starting with a letter or digit');
  }
  return text;
}

export function parseDataDir(text: string): string {
  if (text.trim().length === 0) throw new SettingRejected('expected a directory path');
  return text;
}

function parseSizeOrReject(text: string): number {
  try {
    return parseSize(text);
  } catch (err) {
    if (isPlinthError(err, 'INVALID_SIZE')) throw new SettingRejected(err.message);
    throw err;
  }
}
