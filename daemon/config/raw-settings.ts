import { PlinthError } from '../../common/plinth-error.js';
import type { SettingKey } from './config-types.js';

/**
 * One setting as one source wrote it, before validation. `source` is how the
 * operator would recognise it: `--nbd`, `PLINTH_NBD` or `plinth.yaml: nbd`.
 * Only `disk` and `label` may carry several values.
 */
export interface RawSetting {
  readonly values: readonly string[];
  readonly source: string;
}

export type RawSettings = Partial<Record<SettingKey, RawSetting>>;

/** What each source contributes: the settings plus where it points at a config file. */
export interface SourceSettings {
  readonly settings: RawSettings;
  readonly configFile?: RawSetting;
}

/** The one error shape of configuration: names the setting, its source and the bad value. */
export function configError(source: string, value: string | null, reason: string): PlinthError {
  const subject = value === null ? source : `${source}=${JSON.stringify(value)}`;
  return new PlinthError('CONFIG_INVALID', `config: ${subject}: ${reason}`, { source, value, reason });
}

export function firstValue(setting: RawSetting): string {
  const value = setting.values[0];
  if (value === undefined || setting.values.length !== 1) {
    throw configError(setting.source, null, 'expected exactly one value');
  }
  return value;
}
