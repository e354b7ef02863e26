import { parseArgs } from 'node:util';
import { CliUsageError } from './cli-usage-error.js';

/**
 * `plinth [--api URL] [--token T | --data-dir DIR] [--json] <noun> <verb> [args]`.
 * Global and command options are parsed together (they may appear anywhere);
 * the dispatcher refuses command options a command does not take.
 */
export interface GlobalOptions {
  readonly api?: string;
  readonly token?: string;
  readonly dataDir?: string;
  /** --ca FILE: the cluster CA for an https:// API (connection-settings.ts resolveCa). */
  readonly ca?: string;
  readonly json: boolean;
  readonly help: boolean;
  readonly version: boolean;
}

export type CommandOptionName =
  | 'size' | 'replicas' | 'grace' | 'node' | 'force' | 'wait'
  | 'user' | 'secret-file' | 'target-user' | 'target-secret-file' | 'clear'
  | 'output' | 'since'
  | 'out' | 'days'
  | 'base' | 'from-chunk' | 'input' | 'resume' | 'abort' | 'every' | 'keep' | 'off';

export interface CommandOptions {
  readonly size?: string;
  readonly replicas?: string;
  /** `volume create --grace 10m`: passed to the daemon as typed. */
  readonly grace?: string;
  readonly node?: string;
  readonly force: boolean;
  /** `node drain --wait`: poll until the drain is done. */
  readonly wait: boolean;
  /** `volume chap`: CHAP names, and files holding the secrets (a secret on the command line would show in ps). */
  readonly user?: string;
  readonly secretFile?: string;
  readonly targetUser?: string;
  readonly targetSecretFile?: string;
  /** `volume chap NAME --clear`. */
  readonly clear: boolean;
  /** `support bundle --output FILE --since 2h`. */
  readonly output?: string;
  readonly since?: string;
  /** `tls client-cert NAME --out DIR --days N`: where the certificate folder goes, and its validity. */
  readonly out?: string;
  readonly days?: string;
  /** Issue 8: `volume send VOL@SNAP --base SNAP0 --from-chunk N`, `volume receive NAME --input FILE --resume|--abort`. */
  readonly base?: string;
  readonly fromChunk?: string;
  readonly input?: string;
  /** Present (true) only when given, so older callers' option objects stay as they were. */
  readonly resume?: boolean;
  readonly abort?: boolean;
  /** Issue 8: `snapshot schedule VOL --every 1h --keep 24 | --off`. */
  readonly every?: string;
  readonly keep?: string;
  readonly off?: boolean;
}

export interface ParsedCommandLine {
  readonly global: GlobalOptions;
  readonly options: CommandOptions;
  /** Command options present on the line, to refuse ones a command does not take. */
  readonly givenOptions: readonly CommandOptionName[];
  /** noun, verb, then the command's own arguments. */
  readonly positionals: readonly string[];
}

/** A sanity bound: no command takes more than a handful of words. */
const MAX_POSITIONALS = 16;

const OPTION_SPEC = {
  api: { type: 'string' },
  token: { type: 'string' },
  'data-dir': { type: 'string' },
  ca: { type: 'string' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
  version: { type: 'boolean', default: false },
  size: { type: 'string' },
  replicas: { type: 'string' },
  grace: { type: 'string' },
  node: { type: 'string' },
  force: { type: 'boolean', default: false },
  wait: { type: 'boolean', default: false },
  user: { type: 'string' },
  'secret-file': { type: 'string' },
  'target-user': { type: 'string' },
  'target-secret-file': { type: 'string' },
  clear: { type: 'boolean', default: false },
  output: { type: 'string', short: 'o' },
  since: { type: 'string' },
  out: { type: 'string' },
  days: { type: 'string' },
  base: { type: 'string' },
  'from-chunk': { type: 'string' },
  input: { type: 'string', short: 'i' },
  resume: { type: 'boolean', default: false },
  abort: { type: 'boolean', default: false },
  every: { type: 'string' },
  keep: { type: 'string' },
  off: { type: 'boolean', default: false },
} as const;

export function parseCommandLine(argv: readonly string[]): ParsedCommandLine {
  const { values, positionals } = parseStrict(argv);
  if (values.token !== undefined && values['data-dir'] !== undefined) {
    throw new CliUsageError('give either --token or --data-dir, not both');
  }
  if (positionals.length > MAX_POSITIONALS) throw new CliUsageError('too many arguments');
  const givenOptions: CommandOptionName[] = [];
  if (values.size !== undefined) givenOptions.push('size');
  if (values.replicas !== undefined) givenOptions.push('replicas');
  if (values.grace !== undefined) givenOptions.push('grace');
  if (values.node !== undefined) givenOptions.push('node');
  if (values.force) givenOptions.push('force');
  if (values.wait) givenOptions.push('wait');
  if (values.user !== undefined) givenOptions.push('user');
  if (values['secret-file'] !== undefined) givenOptions.push('secret-file');
  if (values['target-user'] !== undefined) givenOptions.push('target-user');
  if (values['target-secret-file'] !== undefined) givenOptions.push('target-secret-file');
  if (values.clear) givenOptions.push('clear');
  if (values.output !== undefined) givenOptions.push('output');
  if (values.since !== undefined) givenOptions.push('since');
  if (values.out !== undefined) givenOptions.push('out');
  if (values.days !== undefined) givenOptions.push('days');
  if (values.base !== undefined) givenOptions.push('base');
  if (values['from-chunk'] !== undefined) givenOptions.push('from-chunk');
  if (values.input !== undefined) givenOptions.push('input');
  if (values.resume) givenOptions.push('resume');
  if (values.abort) givenOptions.push('abort');
  if (values.every !== undefined) givenOptions.push('every');
  if (values.keep !== undefined) givenOptions.push('keep');
  if (values.off) givenOptions.push('off');
  return {
    global: {
      ...(values.api === undefined ? {} : { api: values.api }),
      ...(values.token === undefined ? {} : { token: values.token }),
      ...(values['data-dir'] === undefined ? {} : { dataDir: values['data-dir'] }),
      ...(values.ca === undefined ? {} : { ca: values.ca }),
      json: values.json,
      help: values.help,
      version: values.version,
    },
    options: {
      ...(values.size === undefined ? {} : { size: values.size }),
      ...(values.replicas === undefined ? {} : { replicas: values.replicas }),
      ...(values.grace === undefined ? {} : { grace: values.grace }),
      ...(values.node === undefined ? {} : { node: values.node }),
      force: values.force,
      wait: values.wait,
      ...(values.user === undefined ? {} : { user: values.user }),
      ...(values['secret-file'] === undefined ? {} : { secretFile: values['secret-file'] }),
      ...(values['target-user'] === undefined ? {} : { targetUser: values['target-user'] }),
      ...(values['target-secret-file'] === undefined ? {} : { targetSecretFile: values['target-secret-file'] }),
      clear: values.clear,
      ...(values.output === undefined ? {} : { output: values.output }),
      ...(values.since === undefined ? {} : { since: values.since }),
      ...(values.out === undefined ? {} : { out: values.out }),
      ...(values.days === undefined ? {} : { days: values.days }),
      ...(values.base === undefined ? {} : { base: values.base }),
      ...(values['from-chunk'] === undefined ? {} : { fromChunk: values['from-chunk'] }),
      ...(values.input === undefined ? {} : { input: values.input }),
      ...(values.resume ? { resume: true } : {}),
      ...(values.abort ? { abort: true } : {}),
      ...(values.every === undefined ? {} : { every: values.every }),
      ...(values.keep === undefined ? {} : { keep: values.keep }),
      ...(values.off ? { off: true } : {}),
    },
    givenOptions,
    positionals,
  };
}

function parseStrict(argv: readonly string[]): ReturnType<typeof parseWithSpec> {
  try {
    return parseWithSpec(argv);
  } catch (err: unknown) {
    // node:util throws TypeError with ERR_PARSE_ARGS_* codes; its message names the option.
    const message = err instanceof Error ? err.message.split('\n')[0] ?? err.message : String(err);
    throw new CliUsageError(message, { cause: err });
  }
}

function parseWithSpec(argv: readonly string[]) {
  return parseArgs({ args: [...argv], options: OPTION_SPEC, allowPositionals: true, strict: true });
}

/** `--replicas N`: a positive decimal integer; the daemon enforces the range. */
export function parseReplicaCount(text: string): number {
  if (!/^\d{1,3}$/.test(text)) {
    throw new CliUsageError(`--replicas must be a whole number, got "${text}"`);
  }
  return Number(text);
}
