/**
 * `npm run soak -- --minutes N --seed S [--nodes 3|5] [--faults kill,stop,…]
 * [--volumes N] [--log-dir DIR] [--daemon-log-level L]`: pure parsing, so the
 * CLI's grammar is unit-tested.
 */
import { PlinthError } from '../../common/plinth-error.js';
import { FAULT_KINDS, type FaultKind } from './soak-nemesis.js';

export interface SoakOptions {
  /** Length of the fault phase; convergence and the end checks come after. */
  readonly minutes: number;
  readonly seed: number;
  readonly nodes: number;
  readonly kinds: readonly FaultKind[];
  readonly volumes: number;
  /** Where logs (and, after a failure, the data dirs) are kept. */
  readonly logDir: string;
  readonly daemonLogLevel: string;
}

export const DEFAULT_KINDS: readonly FaultKind[] = ['kill', 'stop', 'partition', 'failpoint', 'power-cut', 'disk', 'membership'];
export const MAX_MINUTES = 24 * 60;
export const MAX_VOLUMES = 4;

/** A usage error: PlinthError INVALID_ARGUMENT (the CLI exits 2). */
function usage(message: string): PlinthError {
  return new PlinthError('INVALID_ARGUMENT', message);
}

export function isUsageError(err: unknown): err is PlinthError {
  return err instanceof PlinthError && err.code === 'INVALID_ARGUMENT';
}

export function parseSoakArgs(argv: readonly string[], defaultSeed: number): SoakOptions {
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i] ?? '';
    const value = argv[i + 1];
    if (!flag.startsWith('--') || value === undefined) throw usage(`expected --flag value pairs, got ${JSON.stringify(argv.slice(i))}`);
    if (!['--minutes', '--seed', '--nodes', '--faults', '--volumes', '--log-dir', '--daemon-log-level'].includes(flag)) {
      throw usage(`unknown flag ${flag}`);
    }
    values.set(flag.slice(2), value);
  }
  const minutes = Number(values.get('minutes') ?? '1');
  if (!Number.isFinite(minutes) || minutes <= 0 || minutes > MAX_MINUTES) throw usage(`--minutes must be in (0, ${MAX_MINUTES}]`);
  const seed = Number(values.get('seed') ?? String(defaultSeed));
  if (!Number.isSafeInteger(seed) || seed < 0) throw usage('--seed must be a non-negative integer');
  const nodes = Number(values.get('nodes') ?? '3');
  if (nodes !== 3 && nodes !== 5) throw usage('--nodes must be 3 or 5');
  const volumes = Number(values.get('volumes') ?? '2');
  if (!Number.isInteger(volumes) || volumes < 1 || volumes > MAX_VOLUMES) throw usage(`--volumes must be 1..${MAX_VOLUMES}`);
  const kinds = parseKinds(values.get('faults'));
  const logDir = values.get('log-dir') ?? `/tmp/plinth-soak-logs-${seed}`;
  return { minutes, seed, nodes, kinds, volumes, logDir, daemonLogLevel: values.get('daemon-log-level') ?? 'info' };
}

function parseKinds(list: string | undefined): FaultKind[] {
  if (list === undefined) return [...DEFAULT_KINDS];
  const kinds = list.split(',').map((kind) => kind.trim()).filter((kind) => kind !== '');
  for (const kind of kinds) {
    if (!(FAULT_KINDS as readonly string[]).includes(kind)) throw usage(`unknown fault kind ${kind} (known: ${FAULT_KINDS.join(',')})`);
  }
  if (kinds.length === 0) throw usage('--faults names no kind');
  return kinds as FaultKind[];
}

/** The command line that replays a run. */
export function replayCommand(options: SoakOptions): string {
  return `npm run soak -- --minutes ${options.minutes} --seed ${options.seed} --nodes ${options.nodes} --faults ${options.kinds.join(',')} --volumes ${options.volumes}`;
}
