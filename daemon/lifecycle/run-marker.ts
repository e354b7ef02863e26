import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';

/**
 * Did the previous run of this node end cleanly? A file `running` exists in
 * the data dir while plinthd runs and is removed only at the end of a clean
 * shutdown (after every pool store was flushed). Found at start-up, it means
 * the last run crashed or the machine lost power, so this node's disks may
 * have lost writes that were acknowledged but not yet flushed: the replica
 * server then flags every volume held here, durably and per volume, until
 * its owner made the replica identical to a good source
 * (blockdev/replica/replica-service.ts recordUncleanStart, issue 7), and a
 * flagged replica is not the source when a new owner makes in-flight
 * regions identical while another is left (invariant 4; the chaos soak
 * lost acknowledged writes when a restarted owner used its own power-cut
 * replica as the source).
 */

export const RUN_MARKER_FILE = 'running';

export interface RunMarker {
  readonly previousRunEndedUncleanly: boolean;
  /** Remove the marker: call last in a clean shutdown. */
  markClean(): Promise<void>;
}

export async function openRunMarker(dataDir: string, modules: { readonly logger: Logger }): Promise<RunMarker> {
  const path = join(dataDir, RUN_MARKER_FILE);
  let previousRunEndedUncleanly = false;
  try {
    const existing = await open(path, 'wx');
    await writeMarker(existing);
    // A new file's name is durable only once its directory is synced: without this, a power cut
    // soon after start could erase the marker and the next start would count as clean.
    await syncDirectory(dataDir);
  } catch (err) {
    if (!(err instanceof Error && 'code' in err && err.code === 'EEXIST')) throw err;
    previousRunEndedUncleanly = true;
    await writeMarker(await open(path, 'w'));
  }
  if (previousRunEndedUncleanly) {
    modules.logger.warn('the previous run did not shut down cleanly: writes not yet flushed may be missing here, so the volumes held here are flagged unclean (not the failover source) until their owners repair them');
  }
  return {
    previousRunEndedUncleanly,
    markClean: () => rm(path, { force: true }),
  };
}

async function writeMarker(handle: Awaited<ReturnType<typeof open>>): Promise<void> {
  try {
    await handle.writeFile(`${JSON.stringify({ pid: process.pid, startedAt: new Date().toISOString() })}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function syncDirectory(path: string): Promise<void> {
  const directory = await open(path, 'r');
  try {
    await directory.sync();
  } finally {
    await directory.close();
  }
}
