/**
 * A BlockStack on a surviving node after the owner died. The survivor's first
 * connections are refused until the cluster has marked the old owner down and
 * committed the takeover (new generation, failover resync: ARCHITECTURE
 * invariants 3 and 4), so this probes with a one-block read until one works
 * (not nbdinfo: it describes the export through NBD_OPT_INFO, which succeeds
 * without attaching the volume),
 * then runs nbdfuse, retrying a failed nbdfuse start too: all bounded by one
 * deadline.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { BlockStack } from './e2e-block-stack.js';
import { nbdsh } from './e2e-nbd.js';
import { describeRun } from './e2e-process.js';

const RETRY_PAUSE_MS = 250;
const PROBE_TIMEOUT_MS = 15_000;

export interface FailoverAttach {
  /** The loop device over the survivor's export. */
  readonly device: string;
  /** When a read through the survivor first worked (Date.now()). */
  readonly servedAt: number;
}

/** Wait until `uri` opens, then attach `stack` to it; throws with the last error after `timeoutMs`. */
export async function attachWhenServed(stack: BlockStack, uri: string, timeoutMs: number): Promise<FailoverAttach> {
  const deadline = Date.now() + timeoutMs;
  const servedAt = await waitUntilServed(uri, deadline);
  let lastError: unknown = 'no attempt';
  while (Date.now() < deadline) {
    try {
      return { device: await stack.attach(uri), servedAt };
    } catch (err: unknown) {
      lastError = err;
      // Undo the half-done attach before trying again; problems go into the error if it never works.
      const problems = await stack.detach();
      if (problems.length > 0) lastError = new Error(`${String(err)}; detach: ${problems.join('; ')}`);
    }
    await delay(RETRY_PAUSE_MS);
  }
  throw new Error(`could not attach ${uri} within ${timeoutMs} ms: ${describeError(lastError)}`);
}

async function waitUntilServed(uri: string, deadline: number): Promise<number> {
  let lastError: unknown = 'no attempt';
  while (Date.now() < deadline) {
    const probe = await nbdsh(uri, 'h.pread(4096, 0)', PROBE_TIMEOUT_MS);
    if (probe.code === 0) return Date.now();
    lastError = describeRun(probe);
    await delay(RETRY_PAUSE_MS);
  }
  throw new Error(`${uri} was not served before the deadline: ${describeError(lastError)}`);
}

function describeError(err: unknown): string {
  return err instanceof Error ? err.message.slice(-2000) : String(err);
}
