import type { Logger } from 'pino';
import { PlinthError, toError } from '../../common/plinth-error.js';
import type { BlockDevice } from '../../blockdev/block-device.js';
import { type CatchUpProgress, catchUpReplica } from '../../blockdev/volume/catch-up.js';
import { type ByteRegion, mergeByteRegions } from '../../blockdev/volume/dirty-regions.js';
import { RangeLock } from '../../blockdev/volume/range-lock.js';
import { MAX_REGIONS_PER_REPLY, type RegionList } from '../../blockdev/replica/replica-payloads.js';

/**
 * Failover reconciliation (ARCHITECTURE invariant 4). After an owner was lost
 * uncleanly, writes that were in flight may have reached some in-sync
 * replicas and not others. Before the new owner serves a read from more than
 * one replica, it picks one in-sync replica as the source (the local one if
 * any: reads prefer it anyway), collects the activity log of every in-sync
 * replica (regions marked before a write and cleared only after a flush), and
 * copies the source over the union of those regions onto every other one.
 *
 * Runs before the volume serves any I/O, so no range lock contention with
 * clients: the lock is only there because catch-up requires one.
 *
 * A replica whose activity cannot be read or which fails during the copy is
 * returned in `failed`: the caller must commit it out of the in-sync set
 * before serving (invariant 2). A failing source is replaced by the next.
 *
 * Issue 7: a replica flagged unclean (it may lack writes it acknowledged) is
 * the source only when no unflagged one is left. Its possibly lost writes
 * lie in its own activity regions (marked durably before each write), which
 * the copy covers, so afterwards every identical replica is told
 * (markRepaired) and stops saying so; a stale flag would otherwise tie it
 * with a freshly power-cut replica at the next failover. When every
 * candidate was flagged, the copies are identical all the same and all are
 * cleared: there is no better data left to prefer.
 */

export interface ResyncReplica {
  readonly id: string;
  readonly local: boolean;
  /**
   * Flagged unclean: it may lack writes it acknowledged (its node restarted
   * after an unclean end, run-marker.ts) and was not repaired since, so it
   * is the source only when no other candidate is left. Replicas say so in
   * their activity answers (RegionList.uncleanRestart), which count too.
   */
  readonly uncleanRestart?: boolean;
  readonly device: BlockDevice;
  getActivity(offset: number, lengthBytes: number): Promise<RegionList>;
  /** Tell the replica it is identical to a good source now (MARK_REPAIRED); absent: nothing to tell. */
  markRepaired?(): Promise<void>;
}

export interface ResyncOptions {
  readonly sizeBytes: number;
  readonly chunkBytes?: number;
  readonly signal?: AbortSignal;
}

export interface ResyncModules {
  readonly logger: Logger;
}

export interface ResyncOutcome {
  /** Null when no replica could serve as the source. */
  readonly sourceId: string | null;
  /** The in-flight regions made identical, in bytes. */
  readonly regions: readonly ByteRegion[];
  /** Replicas now identical to the source (the source included). */
  readonly identical: readonly string[];
  /** Replicas that could not be reconciled: they must leave the in-sync set before any I/O. */
  readonly failed: readonly string[];
  readonly progress: CatchUpProgress;
}

export async function reconcileInFlightRegions(
  replicas: readonly ResyncReplica[],
  options: ResyncOptions,
  modules: ResyncModules,
): Promise<ResyncOutcome> {
  const failed = new Set<string>();
  const unclean = new Set(replicas.filter((replica) => replica.uncleanRestart === true).map((replica) => replica.id));
  const regionSets: ByteRegion[][] = [];
  for (const replica of replicas) {
    try {
      const noteRestart = (answer: RegionList): void => {
        if (answer.uncleanRestart === true) unclean.add(replica.id);
      };
      regionSets.push(await activeByteRegions(replica, options.sizeBytes, noteRestart));
    } catch (error) {
      modules.logger.warn({ err: toError(error), replicaId: replica.id }, 'cannot read the activity log of an in-sync replica');
      failed.add(replica.id);
    }
  }
  const regions = mergeRegions(regionSets.flat());
  const candidates = sourceOrder(replicas.map((replica) => (unclean.has(replica.id) ? { ...replica, uncleanRestart: true } : replica)));
  let progress: CatchUpProgress = { copiedBytes: 0, zeroedBytes: 0, doneBytes: 0, totalBytes: 0 };
  for (const source of candidates) {
    if (failed.has(source.id)) continue;
    const targets = replicas.filter((replica) => replica.id !== source.id && !failed.has(replica.id));
    const copy = await copyToAll(source, targets, regions, options);
    if (copy.sourceFailed) {
      modules.logger.warn({ sourceId: source.id }, 'failover source failed; trying the next in-sync replica');
      failed.add(source.id);
      continue;
    }
    for (const id of copy.failedTargets) failed.add(id);
    progress = copy.progress;
    const flagged = replicas.filter((replica) => unclean.has(replica.id) && !failed.has(replica.id));
    for (const id of await markRepaired(flagged, source.id, modules.logger)) failed.add(id);
    const identical = replicas.filter((replica) => !failed.has(replica.id)).map((replica) => replica.id);
    modules.logger.info({ sourceId: source.id, regions: regions.length, identical, failed: [...failed], repaired: flagged.map((replica) => replica.id) }, 'in-flight regions reconciled');
    return { sourceId: source.id, regions, identical, failed: [...failed], progress };
  }
  return { sourceId: null, regions, identical: [], failed: [...failed], progress };
}

/**
 * Clear the unclean flag of every flagged replica now identical to the
 * source. A target that cannot be told fails (it leaves the in-sync set and
 * a rebuild clears it later) rather than stay in the set with a stale flag;
 * the source itself stays (it holds the data), flagged, with a warning.
 */
async function markRepaired(flagged: readonly ResyncReplica[], sourceId: string, logger: Logger): Promise<string[]> {
  const failed: string[] = [];
  await Promise.all(
    flagged.map(async (replica) => {
      if (replica.markRepaired === undefined) return;
      try {
        await replica.markRepaired();
      } catch (error) {
        logger.warn({ err: toError(error), replicaId: replica.id, source: replica.id === sourceId }, 'could not clear the unclean flag of a resynced replica');
        if (replica.id !== sourceId) failed.push(replica.id);
      }
    }),
  );
  return failed;
}

interface CopyResult {
  readonly sourceFailed: boolean;
  readonly failedTargets: readonly string[];
  readonly progress: CatchUpProgress;
}

async function copyToAll(
  source: ResyncReplica,
  targets: readonly ResyncReplica[],
  regions: readonly ByteRegion[],
  options: ResyncOptions,
): Promise<CopyResult> {
  let sourceFailed = false;
  // Reads go through this wrapper so a failure is blamed on the right side.
  const sourceReader = {
    read: async (offset: number, target: Buffer): Promise<void> => {
      try {
        await source.device.read(offset, target);
      } catch (error) {
        sourceFailed = true;
        throw error;
      }
    },
  };
  const failedTargets: string[] = [];
  const total: { -readonly [K in keyof CatchUpProgress]: CatchUpProgress[K] } = { copiedBytes: 0, zeroedBytes: 0, doneBytes: 0, totalBytes: 0 };
  const results = await Promise.allSettled(
    targets.map((target) =>
      catchUpReplica(sourceReader, target.device, regions, {
        rangeLock: new RangeLock({ maxEntries: 64 }),
        ...(options.chunkBytes === undefined ? {} : { chunkBytes: options.chunkBytes }),
        ...(options.signal === undefined ? {} : { signal: options.signal }),
      }),
    ),
  );
  results.forEach((result, index) => {
    const target = targets[index];
    if (target === undefined) return;
    if (result.status === 'rejected') failedTargets.push(target.id);
    else {
      total.copiedBytes += result.value.copiedBytes;
      total.zeroedBytes += result.value.zeroedBytes;
      total.doneBytes += result.value.doneBytes;
      total.totalBytes += result.value.totalBytes;
    }
  });
  return { sourceFailed, failedTargets: sourceFailed ? [] : failedTargets, progress: total };
}

/** Every active region of a replica over the whole volume, paged so each answer stays under the reply limit. */
export async function activeByteRegions(replica: ResyncReplica, sizeBytes: number, onAnswer?: (answer: RegionList) => void): Promise<ByteRegion[]> {
  const ask = async (offset: number, lengthBytes: number): Promise<RegionList> => {
    const answer = await replica.getActivity(offset, lengthBytes);
    onAnswer?.(answer);
    return answer;
  };
  const regions = await pagedByteRegions(replica.id, ask, sizeBytes);
  if (regions === 'all') throw new PlinthError('IO_ERROR', `replica ${replica.id} answered an incomplete activity log`, { replicaId: replica.id });
  return regions;
}

/** GET_DIRTY of one replica over [offset, +lengthBytes) since a marker. */
export type DirtyQuestion = (markerSeq: number, offset: number, lengthBytes: number) => Promise<RegionList>;

/**
 * Every region of the replica changed since `markerSeq` (delta resync, issue
 * 4), or 'all' when the replica cannot tell (the marker is unknown to it:
 * its tracking restarted since).
 */
export function dirtyByteRegions(replicaId: string, ask: DirtyQuestion, markerSeq: number, sizeBytes: number): Promise<ByteRegion[] | 'all'> {
  return pagedByteRegions(replicaId, (offset, lengthBytes) => ask(markerSeq, offset, lengthBytes), sizeBytes);
}

/** Pages a region question over the volume; 'all' as soon as one answer is incomplete. */
async function pagedByteRegions(
  replicaId: string,
  ask: (offset: number, lengthBytes: number) => Promise<RegionList>,
  sizeBytes: number,
): Promise<ByteRegion[] | 'all'> {
  if (sizeBytes === 0) return [];
  // A one-byte probe tells the region size, which bounds the window of each later question.
  const probe = await ask(0, 1);
  if (!probe.complete) return 'all';
  const windowBytes = probe.regionSizeBytes * Math.min(MAX_REGIONS_PER_REPLY, 65_536);
  const regions: ByteRegion[] = [];
  for (let offset = 0; offset < sizeBytes; offset += windowBytes) {
    const answer = await ask(offset, Math.min(windowBytes, sizeBytes - offset));
    if (answer.regionSizeBytes !== probe.regionSizeBytes) {
      throw new PlinthError('IO_ERROR', `replica ${replicaId} changed its region size mid-scan`, { replicaId });
    }
    if (!answer.complete) return 'all';
    for (const region of answer.regions) {
      const start = region * answer.regionSizeBytes;
      if (start >= sizeBytes) continue;
      regions.push({ offset: start, lengthBytes: Math.min(answer.regionSizeBytes, sizeBytes - start) });
    }
  }
  return regions;
}

/** Sorted, overlapping and touching regions joined. */
export function mergeRegions(regions: readonly ByteRegion[]): ByteRegion[] {
  return mergeByteRegions(regions);
}

/**
 * Which replica is tried first as the source: the local one (no network
 * copy), then the remote ones, and last any whose node restarted uncleanly:
 * its disk may have lost acknowledged, unflushed writes that the others
 * still hold, and copying it over them would lose those writes everywhere.
 */
export function sourceOrder(replicas: readonly ResyncReplica[]): ResyncReplica[] {
  const rank = (replica: ResyncReplica): number => (replica.uncleanRestart === true ? 2 : replica.local ? 0 : 1);
  return [...replicas].sort((a, b) => rank(a) - rank(b));
}
