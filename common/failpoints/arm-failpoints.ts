import type { Logger } from 'pino';
import { PlinthError } from '../plinth-error.js';
import { FAILPOINT_NAMES } from './failpoint-catalogue.js';
import type { FailpointRegistry } from './failpoint-registry.js';
import { formatFailpoint, parseFailpointList } from './failpoint-spec.js';

/**
 * Arming from outside the process (PLINTH_FAILPOINTS at start, the test-only
 * API at run time): the same `name=action;…` grammar as failpoint-spec.ts,
 * but only names of the catalogue, so a typo fails loudly instead of arming
 * a point nothing ever reaches. All or nothing: the whole text is checked
 * before anything is armed.
 */
export function armCataloguedFailpoints(registry: FailpointRegistry, text: string): void {
  const entries = parseFailpointList(text);
  for (const entry of entries) {
    if (!FAILPOINT_NAMES.has(entry.name)) {
      throw new PlinthError(
        'INVALID_ARGUMENT',
        `unknown failpoint ${JSON.stringify(entry.name)}; known: ${[...FAILPOINT_NAMES].join(', ')}`,
        { failpoint: entry.name },
      );
    }
  }
  for (const entry of entries) {
    if ('off' in entry) registry.disarm(entry.name);
    else registry.arm(entry);
  }
}

/** The armed points as spec text, e.g. for a log line. */
export function describeArmed(registry: FailpointRegistry): string[] {
  return registry.status().map((point) => formatFailpoint(point.spec));
}

/** Environment variable that arms failpoints at daemon start (a test knob, not a config key). */
export const FAILPOINTS_ENV = 'PLINTH_FAILPOINTS';

/**
 * Arm what PLINTH_FAILPOINTS names, before anything else starts, and say so
 * at warn level so nobody runs production armed by accident. Throws
 * INVALID_ARGUMENT on a bad spec: a test that asked for a failpoint must not
 * run without it.
 */
export function armFailpointsFromEnv(
  registry: FailpointRegistry,
  env: Readonly<Record<string, string | undefined>>,
  logger: Logger,
): void {
  const text = env[FAILPOINTS_ENV];
  if (text === undefined || text.trim() === '') return;
  armCataloguedFailpoints(registry, text);
  logger.warn({ failpoints: describeArmed(registry) }, `failpoints armed from ${FAILPOINTS_ENV}: a test build of behaviour, never for production`);
}
