import { parseDocument } from 'yaml';
import { SETTING_KEYS, type SettingKey } from './config-types.js';
import { configError, type RawSettings } from './raw-settings.js';

/** Config files are small; anything larger is a mistake (a disk image passed as --config). */
export const MAX_CONFIG_FILE_BYTES = 1024 * 1024;

/**
 * The config file layer: a YAML mapping whose keys are spelled like the
 * flags. Unknown keys are errors, so a typo never silently falls back to a
 * default. `disk` takes a list (a single string is accepted too).
 */
export function parseConfigFile(text: string, fileName: string): RawSettings {
  if (Buffer.byteLength(text) > MAX_CONFIG_FILE_BYTES) {
    throw configError(fileName, null, `config file is larger than ${MAX_CONFIG_FILE_BYTES} bytes`);
  }
  const document = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  const firstError = document.errors[0];
  if (firstError !== undefined) {
    const line = text.slice(0, firstError.pos[0]).split('\n').length;
    throw configError(fileName, null, `invalid YAML at line ${line}: ${firstError.message}`);
  }
  const root: unknown = document.toJS();
  if (root === null || root === undefined) return {};
  if (typeof root !== 'object' || Array.isArray(root)) {
    throw configError(fileName, null, 'expected a mapping of settings (key: value) at the top level');
  }
  const settings: RawSettings = {};
  for (const [key, value] of Object.entries(root)) {
    const settingKey = SETTING_KEYS.find((candidate) => candidate === key);
    if (settingKey === undefined) {
      throw configError(fileName, null, `unknown key "${key}" (known keys: ${SETTING_KEYS.join(', ')})`);
    }
    const source = `${fileName}: ${key}`;
    settings[settingKey] = { values: valuesOf(settingKey, value, source), source };
  }
  return settings;
}

function valuesOf(key: SettingKey, value: unknown, source: string): string[] {
  if ((key === 'disk' || key === 'label') && Array.isArray(value)) {
    return value.map((item: unknown) => scalarText(item, source));
  }
  return [scalarText(value, source)];
}

function scalarText(value: unknown, source: string): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  const shown = value === null ? 'an empty value' : Array.isArray(value) ? 'a list' : typeof value === 'object' ? 'a mapping' : String(value);
  throw configError(source, null, `expected a string or number, got ${shown}`);
}
