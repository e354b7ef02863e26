import { resolve } from 'node:path';
import {
  DEFAULT_TLS_SETTINGS, NBD_CLIENT_CERT_MODES, NBD_TLS_MODES, TLS_MODES,
  type NbdClientCertMode, type NbdTlsMode, type TlsMode, type TlsSettings,
} from '../tls/tls-mode.js';
import { configError, firstValue, type RawSetting, type RawSettings } from './raw-settings.js';

/**
 * The TLS settings (docs/security.md, docs/operations.md "Settings"):
 * `tls` auto|on|off, `nbd-tls` required|optional, `nbd-tls-client-certs`
 * required|off, and operator certificates
 * `tls-cert-file` + `tls-key-file` + `tls-ca-file` (all three or none).
 * `join-token` is the cluster's 64-hex-digit join token; its message never
 * quotes it.
 */
export function tlsSettingsOf(settings: RawSettings): TlsSettings {
  const mode = oneOf<TlsMode>(settings.tls, TLS_MODES) ?? DEFAULT_TLS_SETTINGS.mode;
  const nbd = oneOf<NbdTlsMode>(settings['nbd-tls'], NBD_TLS_MODES) ?? DEFAULT_TLS_SETTINGS.nbd;
  const nbdClientCerts = oneOf<NbdClientCertMode>(settings['nbd-tls-client-certs'], NBD_CLIENT_CERT_MODES) ?? DEFAULT_TLS_SETTINGS.nbdClientCerts;
  const files = {
    certFile: pathOf(settings['tls-cert-file']),
    keyFile: pathOf(settings['tls-key-file']),
    caFile: pathOf(settings['tls-ca-file']),
  };
  const given = Object.values(files).filter((path) => path !== null).length;
  if (given !== 0 && given !== 3) {
    const missing = (['tls-cert-file', 'tls-key-file', 'tls-ca-file'] as const).filter((key) => settings[key] === undefined);
    throw configError(missing[0] ?? 'tls-cert-file', null, 'operator certificates need all of tls-cert-file, tls-key-file and tls-ca-file');
  }
  if (given === 3 && mode === 'off') throw configError(settings.tls?.source ?? 'tls', 'off', 'tls=off contradicts tls-cert-file/tls-key-file/tls-ca-file');
  return { mode, nbd, nbdClientCerts, ...files };
}

export function joinTokenOf(settings: RawSettings): string | null {
  const setting = settings['join-token'];
  if (setting === undefined) return null;
  const token = firstValue(setting).trim().toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(token)) throw configError(setting.source, null, 'not a join token (expected 64 hex digits, as in <data-dir>/join-token on a member)');
  return token;
}

function oneOf<T extends string>(setting: RawSetting | undefined, allowed: readonly T[]): T | undefined {
  if (setting === undefined) return undefined;
  const value = firstValue(setting);
  const match = allowed.find((candidate) => candidate === value);
  if (match === undefined) throw configError(setting.source, value, `expected one of ${allowed.join(', ')}`);
  return match;
}

function pathOf(setting: RawSetting | undefined): string | null {
  if (setting === undefined) return null;
  const path = firstValue(setting);
  if (path.trim() === '') throw configError(setting.source, path, 'expected a file path');
  return resolve(path);
}
