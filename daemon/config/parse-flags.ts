import { parseArgs } from 'node:util';
import { configError, type RawSettings, type SourceSettings } from './raw-settings.js';
import { SETTING_KEYS } from './config-types.js';

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
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
} as const;

/** Flags are the highest layer of configuration (flags > env > file > defaults). */
export function parseFlags(argv: readonly string[]): ParsedFlags {
  const parsed = parseArgsOrConfigError(argv);
  const settings: RawSettings = {};
  for (const key of SETTING_KEYS) {
    const value = parsed[key];
    if (value === undefined) continue;
    const values = typeof value === 'string' ? [value] : value;
    settings[key] = { values, source: `--${key}` };
  }
  const base = { settings, help: parsed.help === true, version: parsed.version === true };
  return parsed.config === undefined ? base : { ...base, configFile: { values: [parsed.config], source: '--config' } };
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
