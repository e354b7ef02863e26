import { SETTING_KEYS, type SettingKey } from './config-types.js';
import type { RawSettings, SourceSettings } from './raw-settings.js';

export type Environment = Readonly<Record<string, string | undefined>>;

/** `data-dir` → `PLINTH_DATA_DIR`. */
export function envNameOf(key: SettingKey | 'config'): string {
  return `PLINTH_${key.toUpperCase().replaceAll('-', '_')}`;
}

/**
 * The environment layer. An empty variable counts as unset, so an
 * EnvironmentFile line like `PLINTH_JOIN=` does not override the config file.
 * PLINTH_DISK and PLINTH_LABEL are comma-separated lists. Other PLINTH_* names (PLINTH_TOKEN
 * is the CLI's) are not ours to judge and are ignored.
 */
export function parseEnv(env: Environment): SourceSettings {
  const settings: RawSettings = {};
  for (const key of SETTING_KEYS) {
    const name = envNameOf(key);
    const text = env[name];
    if (text === undefined || text === '') continue;
    const values = key === 'disk' || key === 'label' ? text.split(',').map((item) => item.trim()) : [text];
    settings[key] = { values, source: name };
  }
  const configPath = env[envNameOf('config')];
  if (configPath === undefined || configPath === '') return { settings };
  return { settings, configFile: { values: [configPath], source: envNameOf('config') } };
}
