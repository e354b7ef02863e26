import { randomBytes } from 'node:crypto';
import { chmod, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { PlinthError } from '../../common/plinth-error.js';
import { readOptionalFile } from './node-identity.js';

export const API_TOKEN_FILE = 'api-token';
const TOKEN_BYTES = 32;

export interface ApiTokenModules {
  readonly logger: Logger;
  /** Injected so tests can make tokens deterministic. */
  readonly randomBytes?: (size: number) => Buffer;
}

/**
 * The REST token lives in `<data-dir>/api-token`, mode 0600, 32 random bytes
 * as hex (ARCHITECTURE "auth" contract). Created once at bootstrap with an
 * exclusive open so two racing starts cannot both write one.
 */
export async function ensureApiToken(dataDir: string, modules: ApiTokenModules): Promise<string> {
  const path = join(dataDir, API_TOKEN_FILE);
  const existing = await readOptionalFile(path);
  if (existing !== null) return validatedToken(path, existing, modules.logger);
  const token = (modules.randomBytes ?? randomBytes)(TOKEN_BYTES).toString('hex');
  await writeFile(path, `${token}\n`, { mode: 0o600, flag: 'wx', flush: true });
  // The umask cannot widen 0600, but a pre-existing umask of 0 plus an odd
  // filesystem could; make it explicit.
  await chmod(path, 0o600);
  modules.logger.info({ path }, 'created the API token');
  return token;
}

async function validatedToken(path: string, text: string, logger: Logger): Promise<string> {
  const token = text.trim();
  if (token.length < 16 || /\s/.test(token)) {
    throw new PlinthError('CONFIG_INVALID', `config: ${path} does not hold a usable API token (expected one line of at least 16 characters)`, { path });
  }
  const mode = (await stat(path)).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    logger.warn({ path, mode: mode.toString(8) }, 'the API token file is readable by other users; chmod 600 it');
  }
  return token;
}
