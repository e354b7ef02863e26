import { join } from 'node:path';
import { isPlinthError, PlinthError } from '../../common/plinth-error.js';
import type { DiskSpec } from '../../blockdev/pool/pool-types.js';
import {
  DEFAULT_DISK_FILE,
  DEFAULT_DISK_SIZE_BYTES,
  DEFAULTS,
  SETTING_KEYS,
  type Config,
  type SettingKey,
} from './config-types.js';
import { iscsiChapOf, type ReadSecretFile } from './iscsi-chap-settings.js';
import { joinTokenOf, tlsSettingsOf } from './tls-settings.js';
import { parseConfigFile } from './parse-config-file.js';
import { parseEnv, type Environment } from './parse-env.js';
import { parseFlags } from './parse-flags.js';
import { configError, firstValue, type RawSetting, type RawSettings } from './raw-settings.js';
import {
  parseDataDir,
  parseDisk,
  parseExtentSize,
  parseHostPort,
  parseLogLevel,
  parseNodeId,
  SettingRejected,
} from './setting-parsers.js';

export interface ConfigInput {
  readonly argv: readonly string[];
  readonly env: Environment;
  /** Reads the config file named by --config / PLINTH_CONFIG; throws on I/O errors. */
  readonly readConfigFile: (path: string) => string;
  /** Reads a secret file (--iscsi-chap-secret-file …); defaults to readConfigFile. */
  readonly readSecretFile?: ReadSecretFile;
}

export type ConfigOutcome =
  | { readonly action: 'help' }
  | { readonly action: 'version' }
  | { readonly action: 'run'; readonly config: Config };

/**
 * argv + env + config file text → Config, or the first CONFIG_INVALID that
 * names the bad key and where it came from. Precedence per key:
 * flags > env > config file > defaults (ARCHITECTURE, "daemon" contract).
 */
export function resolveConfig(input: ConfigInput): ConfigOutcome | PlinthError {
  try {
    return resolveOrThrow(input);
  } catch (err) {
    if (isPlinthError(err)) return err;
    throw err;
  }
}

function resolveOrThrow(input: ConfigInput): ConfigOutcome {
  const flags = parseFlags(input.argv);
  if (flags.help) return { action: 'help' };
  if (flags.version) return { action: 'version' };
  const env = parseEnv(input.env);
  const configFileSetting = flags.configFile ?? env.configFile;
  const configFile = configFileSetting === undefined ? null : firstValue(configFileSetting);
  const fileSettings =
    configFileSetting === undefined || configFile === null
      ? {}
      : parseConfigFile(readConfigFileText(input, configFile, configFileSetting), configFile);
  const merged = mergeLayers([flags.settings, env.settings, fileSettings]);
  return { action: 'run', config: buildConfig(merged, configFile, input.readSecretFile ?? input.readConfigFile) };
}

function readConfigFileText(input: ConfigInput, path: string, setting: RawSetting): string {
  try {
    return input.readConfigFile(path);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw configError(setting.source, path, `cannot read the config file: ${reason}`);
  }
}

/** Highest layer first; a key takes the first layer that sets it (lists are not concatenated). */
function mergeLayers(layers: readonly RawSettings[]): RawSettings {
  const merged: RawSettings = {};
  for (const key of SETTING_KEYS) {
    const setting = layers.map((layer) => layer[key]).find((candidate) => candidate !== undefined);
    if (setting !== undefined) merged[key] = setting;
  }
  return merged;
}

function buildConfig(settings: RawSettings, configFile: string | null, readSecretFile: ReadSecretFile): Config {
  const dataDir = single(settings, 'data-dir', parseDataDir) ?? DEFAULTS.dataDir;
  const sources: Partial<Record<SettingKey, string>> = {};
  for (const key of SETTING_KEYS) {
    const source = settings[key]?.source;
    if (source !== undefined) sources[key] = source;
  }
  return {
    configFile,
    dataDir,
    nodeId: single(settings, 'node-id', parseNodeId) ?? null,
    api: single(settings, 'api', parseHostPort) ?? DEFAULTS.api,
    peer: single(settings, 'peer', parseHostPort) ?? DEFAULTS.peer,
    nbd: single(settings, 'nbd', parseHostPort) ?? DEFAULTS.nbd,
    iscsi: single(settings, 'iscsi', parseHostPort) ?? DEFAULTS.iscsi,
    disks: disksOf(settings, dataDir),
    join: single(settings, 'join', parseHostPort) ?? null,
    logLevel: single(settings, 'log-level', parseLogLevel) ?? DEFAULTS.logLevel,
    extentSizeBytes: single(settings, 'extent-size', parseExtentSize) ?? null,
    labels: labelsOf(settings),
    iscsiChap: iscsiChapOf(settings, readSecretFile),
    tls: tlsSettingsOf(settings),
    joinToken: joinTokenOf(settings),
    sources,
  };
}

function single<T>(settings: RawSettings, key: SettingKey, parse: (text: string) => T): T | undefined {
  const setting = settings[key];
  if (setting === undefined) return undefined;
  return parseValue(setting, firstValue(setting), parse);
}

/** `zone=NAME` and `rack=NAME`, each at most once: the scheduler's failure domains. */
function labelsOf(settings: RawSettings): { zone?: string; rack?: string } {
  const setting = settings.label;
  const labels: { zone?: string; rack?: string } = {};
  for (const text of setting?.values ?? []) {
    const match = /^(zone|rack)=([A-Za-z0-9][A-Za-z0-9._-]{0,63})$/.exec(text);
    const key = match?.[1];
    const value = match?.[2];
    if (setting === undefined || (key !== 'zone' && key !== 'rack') || value === undefined) {
      throw configError(setting?.source ?? 'label', text, 'expected zone=NAME or rack=NAME (1-64 of A-Z, a-z, 0-9, ".", "_", "-")');
    }
    if (labels[key] !== undefined) throw configError(setting.source, text, `the ${key} label is given twice`);
    labels[key] = value;
  }
  return labels;
}

function disksOf(settings: RawSettings, dataDir: string): DiskSpec[] {
  const setting = settings.disk;
  if (setting === undefined || setting.values.length === 0) {
    return [{ path: join(dataDir, DEFAULT_DISK_FILE), sizeBytes: DEFAULT_DISK_SIZE_BYTES }];
  }
  const disks = setting.values.map((text) => parseValue(setting, text, parseDisk));
  const seen = new Set<string>();
  for (const disk of disks) {
    if (seen.has(disk.path)) throw configError(setting.source, disk.path, 'the same disk is listed twice');
    seen.add(disk.path);
  }
  return disks;
}

function parseValue<T>(setting: RawSetting, text: string, parse: (text: string) => T): T {
  try {
    return parse(text);
  } catch (err) {
    if (err instanceof SettingRejected) throw configError(setting.source, text, err.message);
    throw err;
  }
}
