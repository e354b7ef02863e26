import { readFileSync } from 'node:fs';

/**
 * The package version, read from package.json at the repository root
 * (dist/daemon/version.js → ../../package.json), once at start-up.
 */
export function readDaemonVersion(): string {
  const parsed: unknown = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
  if (typeof parsed === 'object' && parsed !== null && 'version' in parsed && typeof parsed.version === 'string') {
    return parsed.version;
  }
  return '0.0.0-unknown';
}
