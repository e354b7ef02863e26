import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { CliSetupError, CliUsageError } from './cli-usage-error.js';
import type { GlobalOptions } from './parse-args.js';

/** Defaults from ARCHITECTURE.md: API on 127.0.0.1:9700, data dir ./data, token in <data-dir>/api-token. */
export const DEFAULT_API_URL = 'http://127.0.0.1:9700';
export const DEFAULT_DATA_DIR = './data';
export const TOKEN_FILE_NAME = 'api-token';
/** Where a TLS cluster keeps its CA certificate, relative to the data dir (daemon/tls/tls-files.ts). */
export const CA_FILE_PATH = 'tls/ca.crt';
/** A CA certificate (or a small bundle) is a few KiB. */
const CA_FILE_MAX_BYTES = 64 * 1024;
/** Tokens are short; anything bigger is not a token file. */
const TOKEN_FILE_MAX_BYTES = 4096;

export type CliEnv = Readonly<Record<string, string | undefined>>;

/**
 * --api, else PLINTH_API, else the default. "host:port" without a scheme
 * means http, or https when a cluster CA is known (`tls`: --ca, PLINTH_CA or
 * <data-dir>/tls/ca.crt, see resolveCa): a TLS cluster's API speaks HTTPS only.
 */
export function resolveApiUrl(global: GlobalOptions, env: CliEnv, tls = false): string {
  const raw = global.api ?? nonEmpty(env['PLINTH_API']) ?? (tls ? DEFAULT_API_URL.replace(/^http:/, 'https:') : DEFAULT_API_URL);
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `${tls ? 'https' : 'http'}://${raw}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch (err: unknown) {
    throw new CliUsageError(`--api: "${raw}" is not a URL (expected e.g. http://127.0.0.1:9700)`, { cause: err });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new CliUsageError(`--api: "${raw}" must be an http:// or https:// URL`);
  }
  return url.origin + url.pathname.replace(/\/+$/, '');
}

/**
 * The CA to trust for HTTPS (docs/security.md "CLI"): --ca FILE, else
 * PLINTH_CA, else <data-dir>/tls/ca.crt when that exists (found like the
 * token). undefined: no CA known, a plain cluster.
 */
export async function resolveCa(global: GlobalOptions, env: CliEnv, cwd: string): Promise<string | undefined> {
  const explicit = global.ca ?? nonEmpty(env['PLINTH_CA']);
  if (explicit !== undefined) return readCaFile(resolve(cwd, explicit), true);
  if (global.token !== undefined && global.dataDir === undefined) return undefined;
  const dataDir = global.dataDir ?? nonEmpty(env['PLINTH_DATA_DIR']) ?? DEFAULT_DATA_DIR;
  return readCaFile(resolve(cwd, dataDir, CA_FILE_PATH), false);
}

async function readCaFile(path: string, required: boolean): Promise<string | undefined> {
  let content: Buffer;
  try {
    content = await readFile(path);
  } catch (err: unknown) {
    const code = err instanceof Error && 'code' in err ? err.code : undefined;
    if (!required && code === 'ENOENT') return undefined;
    throw new CliSetupError(`cannot read the CA file ${path}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  const text = content.subarray(0, CA_FILE_MAX_BYTES + 1).toString('utf8');
  if (content.length > CA_FILE_MAX_BYTES || !text.includes('-----BEGIN CERTIFICATE-----')) {
    throw new CliSetupError(`${path} does not hold a PEM CA certificate (expected <data-dir>/tls/ca.crt of a TLS cluster)`);
  }
  return text;
}

/** --token, else PLINTH_TOKEN, else <data-dir>/api-token (data dir: --data-dir, PLINTH_DATA_DIR, ./data). */
export async function resolveToken(global: GlobalOptions, env: CliEnv, cwd: string): Promise<string> {
  if (global.token !== undefined) {
    if (global.token.trim() === '') throw new CliUsageError('--token must not be empty');
    return global.token.trim();
  }
  const fromEnv = nonEmpty(env['PLINTH_TOKEN']);
  if (fromEnv !== undefined) return fromEnv.trim();
  const dataDir = global.dataDir ?? nonEmpty(env['PLINTH_DATA_DIR']) ?? DEFAULT_DATA_DIR;
  return readTokenFile(resolve(cwd, dataDir, TOKEN_FILE_NAME));
}

async function readTokenFile(path: string): Promise<string> {
  let content: Buffer;
  try {
    content = await readFile(path);
  } catch (err: unknown) {
    throw new CliSetupError(describeTokenFileError(path, err), { cause: err });
  }
  const token = content.subarray(0, TOKEN_FILE_MAX_BYTES + 1).toString('utf8').trim();
  if (content.length > TOKEN_FILE_MAX_BYTES || token === '' || /\s/.test(token)) {
    throw new CliSetupError(`${path} does not hold an API token (expected one line written by plinthd)`);
  }
  return token;
}

function describeTokenFileError(path: string, err: unknown): string {
  const code = err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
  if (code === 'ENOENT') {
    return `no API token: ${path} does not exist; pass --data-dir DIR (the daemon's data dir), `
      + '--token T, or set PLINTH_TOKEN';
  }
  if (code === 'EACCES') {
    return `cannot read ${path}: permission denied (the token file is mode 0600; run as its owner)`;
  }
  return `cannot read ${path}: ${err instanceof Error ? err.message : String(err)}`;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}
