import { PlinthError } from '../plinth-error.js';

/**
 * What an armed failpoint does when execution reaches it (issue 7). Parsed
 * from text so the same spec arms a point from the environment at start-up
 * (`PLINTH_FAILPOINTS`) or through the test-only API at run time:
 *
 *   name=action[:option=value]...      several separated by `;`
 *
 *   actions: crash | error | error(EIO|ENOSPC) | stall(MS) | power-cut | off
 *   options: times=N  fire at most N times, then disarm (default: every hit)
 *            skip=N   let the first N hits pass untouched (default 0)
 *            match=S  fire only when the call site's subject equals S
 *                     (a volume name, an extent index …; see the call site)
 *
 * e.g. `replica.write.before-ack=crash:skip=100;disk.read=error(EIO):match=7`
 */

export type FailpointErrno = 'EIO' | 'ENOSPC';

export type FailpointAction =
  | { readonly kind: 'crash' }
  | { readonly kind: 'error'; readonly errno: FailpointErrno }
  | { readonly kind: 'stall'; readonly durationMs: number }
  | { readonly kind: 'power-cut' };

export interface FailpointSpec {
  readonly name: string;
  readonly action: FailpointAction;
  /** Remaining hits that fire; undefined = unlimited. */
  readonly times?: number;
  readonly skip: number;
  readonly match?: string;
}

/** Longest stall accepted: a stall is a test's tool, never a way to wedge a daemon for good. */
export const MAX_STALL_MS = 10 * 60 * 1000;
const NAME_PATTERN = /^[a-z0-9][a-z0-9.-]{0,127}$/;
const ERRNOS: readonly FailpointErrno[] = ['EIO', 'ENOSPC'];

/** `off` parses to null: the caller disarms the point. */
export function parseFailpoint(text: string): FailpointSpec | { readonly name: string; readonly off: true } {
  const trimmed = text.trim();
  const equals = trimmed.indexOf('=');
  if (equals <= 0) throw invalid(text, 'expected name=action');
  const name = trimmed.slice(0, equals).trim();
  if (!NAME_PATTERN.test(name)) throw invalid(text, `bad failpoint name ${JSON.stringify(name)} (lowercase letters, digits, dots, dashes)`);
  const [actionText = '', ...optionTexts] = trimmed.slice(equals + 1).split(':');
  if (actionText.trim() === 'off') {
    if (optionTexts.length > 0) throw invalid(text, '`off` takes no options');
    return { name, off: true };
  }
  const action = parseAction(text, actionText.trim());
  let times: number | undefined;
  let skip = 0;
  let match: string | undefined;
  for (const optionText of optionTexts) {
    const [key = '', value = '', ...rest] = optionText.split('=');
    if (rest.length > 0 || value === '') throw invalid(text, `bad option ${JSON.stringify(optionText)} (expected key=value)`);
    if (key === 'times') times = parseCount(text, key, value, 1);
    else if (key === 'skip') skip = parseCount(text, key, value, 0);
    else if (key === 'match') match = value;
    else throw invalid(text, `unknown option ${JSON.stringify(key)} (times, skip, match)`);
  }
  return { name, action, skip, ...(times === undefined ? {} : { times }), ...(match === undefined ? {} : { match }) };
}

/** Several specs separated by `;` (empty entries ignored). Later entries for one name win. */
export function parseFailpointList(text: string): Array<FailpointSpec | { readonly name: string; readonly off: true }> {
  return text
    .split(';')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '')
    .map(parseFailpoint);
}

export function formatFailpoint(spec: FailpointSpec): string {
  const action = spec.action;
  const actionText =
    action.kind === 'error' ? `error(${action.errno})` : action.kind === 'stall' ? `stall(${action.durationMs})` : action.kind;
  const options = [
    spec.times === undefined ? '' : `:times=${spec.times}`,
    spec.skip === 0 ? '' : `:skip=${spec.skip}`,
    spec.match === undefined ? '' : `:match=${spec.match}`,
  ].join('');
  return `${spec.name}=${actionText}${options}`;
}

function parseAction(text: string, actionText: string): FailpointAction {
  const call = /^([a-z-]+)(?:\(([^)]*)\))?$/.exec(actionText);
  if (call === null) throw invalid(text, `bad action ${JSON.stringify(actionText)}`);
  const [, kind = '', argument] = call;
  switch (kind) {
    case 'crash':
    case 'power-cut':
      if (argument !== undefined) throw invalid(text, `${kind} takes no argument`);
      return { kind };
    case 'error': {
      const errno = argument ?? 'EIO';
      if (!(ERRNOS as readonly string[]).includes(errno)) throw invalid(text, `error(${errno}): expected one of ${ERRNOS.join(', ')}`);
      return { kind: 'error', errno: errno as FailpointErrno };
    }
    case 'stall': {
      const durationMs = Number(argument);
      if (argument === undefined || !Number.isInteger(durationMs) || durationMs < 0 || durationMs > MAX_STALL_MS) {
        throw invalid(text, `stall(MS) needs whole milliseconds from 0 to ${MAX_STALL_MS}`);
      }
      return { kind: 'stall', durationMs };
    }
    default:
      throw invalid(text, `unknown action ${JSON.stringify(kind)} (crash, error, stall, power-cut, off)`);
  }
}

function parseCount(text: string, key: string, value: string, minimum: number): number {
  const count = Number(value);
  if (!Number.isSafeInteger(count) || count < minimum) throw invalid(text, `${key}=${value}: expected a whole number >= ${minimum}`);
  return count;
}

function invalid(text: string, why: string): PlinthError {
  return new PlinthError('INVALID_ARGUMENT', `failpoint ${JSON.stringify(text)}: ${why}`, { failpoint: text });
}
