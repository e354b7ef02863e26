import { PlinthError } from '../plinth-error.js';
import type { FailpointAction } from './failpoint-spec.js';
import { FailpointRegistry } from './failpoint-registry.js';

/**
 * Named crash, error and stall points compiled into the data path and the
 * cluster path (issue 7). Off unless armed by `PLINTH_FAILPOINTS` or the
 * test-only API. A call site on a hot path reads `failpoints.armed` first:
 *
 *   if (failpoints.armed) await hitFailpoint('replica.write.before-ack', volumeName);
 *
 * so a daemon with nothing armed pays one property read per pass.
 */

/** How an action reaches the world; tests replace these to watch them. */
export interface FailpointEffects {
  /** kill -9 of this very process: no cleanup, no flush, like a crash. */
  crash(name: string): never;
  /** Drop un-synced disk writes (the power-loss disk layer registers itself), then crash. */
  powerCut(name: string): never;
  sleep(durationMs: number): Promise<void>;
  /** A stall at a synchronous call site freezes the whole process, as SIGSTOP would. */
  freeze(durationMs: number): void;
}

export const failpoints = new FailpointRegistry();

let powerCutHandlers: Array<() => void> = [];

/** The power-loss disk layer registers how to lose its un-synced writes. Returns the unregister function. */
export function onPowerCut(handler: () => void): () => void {
  powerCutHandlers.push(handler);
  return () => {
    powerCutHandlers = powerCutHandlers.filter((candidate) => candidate !== handler);
  };
}

export const processEffects: FailpointEffects = {
  crash(name: string): never {
    process.stderr.write(`plinthd: failpoint ${name}: crashing (SIGKILL)\n`);
    process.kill(process.pid, 'SIGKILL');
    // SIGKILL of oneself is delivered before kill() returns on Linux; this only satisfies `never`.
    throw new PlinthError('INTERNAL', `failpoint ${name}: SIGKILL did not stop the process`);
  },
  powerCut(name: string): never {
    process.stderr.write(`plinthd: failpoint ${name}: power cut\n`);
    for (const handler of powerCutHandlers) handler();
    return processEffects.crash(name);
  },
  sleep: (durationMs: number) => new Promise((resolve) => setTimeout(resolve, durationMs)),
  freeze(durationMs: number): void {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, durationMs);
  },
};

let effects: FailpointEffects = processEffects;

/** Tests only: watch actions instead of performing them. Returns a restore function. */
export function useFailpointEffects(replacement: FailpointEffects): () => void {
  const previous = effects;
  effects = replacement;
  return () => {
    effects = previous;
  };
}

/** An async call site: crash, throw an I/O error, or stall without blocking the process. */
export async function hitFailpoint(name: string, subject?: string): Promise<void> {
  const action = failpoints.check(name, subject);
  if (action === undefined) return;
  if (action.kind === 'stall') {
    await effects.sleep(action.durationMs);
    return;
  }
  perform(name, action);
}

/** A synchronous call site: a stall freezes the process. */
export function hitFailpointSync(name: string, subject?: string): void {
  const action = failpoints.check(name, subject);
  if (action === undefined) return;
  if (action.kind === 'stall') {
    effects.freeze(action.durationMs);
    return;
  }
  perform(name, action);
}

function perform(name: string, action: Exclude<FailpointAction, { kind: 'stall' }>): void {
  switch (action.kind) {
    case 'crash':
      effects.crash(name);
      break;
    case 'power-cut':
      effects.powerCut(name);
      break;
    case 'error':
      throw failpointError(name, action.errno);
  }
}

/** The error an `error` action raises: the codes the data path already maps (NBD errno, SCSI sense). */
export function failpointError(name: string, errno: 'EIO' | 'ENOSPC'): PlinthError {
  return errno === 'ENOSPC'
    ? new PlinthError('NO_SPACE', `failpoint ${name}: injected ENOSPC`, { failpoint: name })
    : new PlinthError('IO_ERROR', `failpoint ${name}: injected EIO`, { failpoint: name });
}
