import { parseArgs } from 'node:util';
import { configError, type RawSettings, type SourceSettings } from './raw-settings.js';
import { SECRET_SETTING_KEYS, SETTING_KEYS, type SettingKey } from './config-types.js';

/** What the command line asks for besides settings. */
export interface ParsedFlags extends SourceSettings {
  readonly help: boolean;
  readonly version: boolean;
}

const FLAG_OPTIONS = {
  config: { type: 'string' },
  'data-dir': { type: 'string' },
  'node-id': { type: 'string' },
  api: { type: 'string' },
  peer: { type: 'string' },
  nbd: { type: 'string' },
  iscsi: { type: 'string' },
  disk: { type: 'string', multiple: true },
  join: { type: 'string' },
  'log-level': { type: 'string' },
  'extent-size': { type: 'string' },
  label: { type: 'string', multiple: true },
  'iscsi-chap-user': { type: 'string' },
  'iscsi-chap-secret-file': { type: 'string' },
  'iscsi-chap-target-user': { type: 'string' },
  'iscsi-chap-target-secret-file': { type: 'string' },
  tls: { type: 'string' },
  'tls-cert-file': { type: 'string' },
  'tls-key-file': { type: 'string' },
  'tls-ca-file': { type: 'string' },
  'nbd-tls': { type: 'string' },
  'nbd-tls-client-certs': { type: 'string' },
  'join-token': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
} as const;

type SecretSettingKey = (typeof SECRET_SETTING_KEYS)[number];
type FlagSettingKey = Exclude<SettingKey, SecretSettingKey>;

/** Every setting but the secrets, which would show in `ps` (config-types.ts SECRET_SETTING_KEYS). */
const FLAG_SETTING_KEYS: readonly FlagSettingKey[] = SETTING_KEYS.filter(
  (key): key is FlagSettingKey => !(SECRET_SETTING_KEYS as readonly SettingKey[]).includes(key),
);

/** Flags are the highest layer of configuration (flags > env > file > defaults). */
export function parseFlags(argv: readonly string[]): ParsedFlags {
  refuseSecretFlags(argv);
  const parsed = parseArgsOrConfigError(argv);
  const settings: RawSettings = {};
  for (const key of FLAG_SETTING_KEYS) {
    const value = parsed[key];
    if (value === undefined) continue;
    const values = typeof value === 'string' ? [value] : value;
    settings[key] = { values, source: `--${key}` };
  }
  const base = { settings, help: parsed.help === true, version: parsed.version === true };
  return parsed.config === undefined ? base : { ...base, configFile: { values: [parsed.config], source: '--config' } };
}

/** A clearer word than "unknown option" for a secret given on the command line. */
function refuseSecretFlags(argv: readonly string[]): void {
  for (const arg of argv) {
    if (arg === '--') return;
    const key = SECRET_SETTING_KEYS.find((secretKey) => arg === `--${secretKey}` || arg.startsWith(`--${secretKey}=`));
    if (key !== undefined) {
      throw configError(`--${key}`, null, `secrets are not taken on the command line (they show in ps); use --${key}-file, the YAML key or PLINTH_${key.toUpperCase().replaceAll('-', '_')}`);
    }
  }
}

function parseArgsOrConfigError(argv: readonly string[]): ReturnType<typeof parseStrict> {
  try {
    return parseStrict(argv);
  } catch (err) {
    // node:util parseArgs throws TypeErrors with ERR_PARSE_ARGS_* codes for
    // unknown flags, missing values and stray positionals.
    if (err instanceof TypeError && 'code' in err && typeof err.code === 'string' && err.code.startsWith('ERR_PARSE_ARGS')) {
      // Their messages run on with advice on positionals; the first sentence is the point.
      const firstLine = err.message.split('\n')[0] ?? err.message;
      throw configError('command line', null, firstLine.replace(/\. To specify a positional argument.*$/, ''));
    }
    throw err;
  }
}

function parseStrict(argv: readonly string[]) {
  return parseArgs({ args: [...argv], options: FLAG_OPTIONS, strict: true, allowPositionals: false }).values;
}
