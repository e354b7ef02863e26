import type { Logger } from 'pino';
import { toError } from '../../common/plinth-error.js';
import type { CatchUpProgress } from '../../blockdev/volume/catch-up.js';
import type { DataPlaneCluster } from '../volume/data-plane-cluster.js';
import type { VolumeSession } from '../volume/volume-session.js';
import type { ReplicaReplacementPort } from './replica-replacement.js';
import type { RebuildSessionView, SnapshotRebuildOutcome } from '../snapshots/snapshot-rebuild.js';

/**
 * The owner-side reconciler (ARCHITECTURE "daemon/reconciler", issue 4
 * "Rebuild"): every `intervalMs`, each faulted replica of a volume served
 * here whose node is up again is caught up while live writes continue and
 * committed back in-sync (VolumeSession.rebuild). Progress and how long each
 * replica has been out are kept for `volume inspect` and metrics.
 *
 * A replica out for longer than the volume's grace period is flagged
 * `graceExpired`. With a `replacement` port, one whose node is still down,
 * or up but failing its rebuilds (a bad disk; issue 7 "rebuilds elsewhere"),
 * is then replaced (issue 4 "Rebuild"): a new replica is committed on another up
 * node (replica.add), joins this session faulted and is rebuilt in full by
 * the ordinary path above; once the volume has its replica count in sync
 * again, the lost replica is committed away (replica.remove). Never below the
 * count: the lost one goes only after its replacement is in sync.
 */

export interface RebuildReconcilerOptions {
  readonly intervalMs?: number;
  /** Rebuilds running at once on this node. */
  readonly maxConcurrentRebuilds?: number;
}

export interface RebuildReconcilerModules {
  readonly sessions: () => readonly VolumeSession[];
  readonly cluster: DataPlaneCluster;
  readonly logger: Logger;
  /** Absent: grace-expired replicas are only flagged, never replaced. */
  readonly replacement?: ReplicaReplacementPort;
  /**
   * Issue 8 "rebuilt with it" (daemon/snapshots/snapshot-rebuild.ts): copies
   * the snapshots the replica lacks into it before its live catch-up.
   * Absent: replicas are rebuilt without their snapshots.
   */
  readonly snapshots?: { copyMissing(session: RebuildSessionView, nodeId: string): Promise<SnapshotRebuildOutcome> };
  readonly nowMs?: () => number;
  readonly setInterval?: (callback: () => void, ms: number) => NodeJS.Timeout;
  readonly clearInterval?: (timer: NodeJS.Timeout) => void;
}

export interface ReplicaRepairView {
  readonly volume: string;
  readonly nodeId: string;
  readonly faultedSinceMs: number | null;
  readonly rebuilding: boolean;
  readonly progress: CatchUpProgress | null;
  readonly graceExpired: boolean;
  readonly lastError: string | null;
}

interface RepairRecord {
  faultedSinceMs: number | null;
  running: Promise<void> | undefined;
  /** A replacement step (commit add or remove) in progress for this lost replica. */
  replacing: Promise<void> | undefined;
  progress: CatchUpProgress | null;
  graceExpired: boolean;
  lastError: string | null;
  /** The last rebuild in place failed (lastError may also come from a replacement step). */
  rebuildFailed: boolean;
  /** The last replacement step found no node to take the replica: rebuild in place meanwhile. */
  noReplacementNode: boolean;
}

export class RebuildReconciler {
  readonly #options: RebuildReconcilerOptions;
  readonly #modules: RebuildReconcilerModules;
  readonly #logger: Logger;
  readonly #nowMs: () => number;
  readonly #records = new Map<string, RepairRecord>();
  #timer: NodeJS.Timeout | undefined;
  #ticking = false;

  constructor(options: RebuildReconcilerOptions, modules: RebuildReconcilerModules) {
    this.#options = options;
    this.#modules = modules;
    this.#logger = modules.logger.child({ component: 'rebuild-reconciler' });
    this.#nowMs = modules.nowMs ?? Date.now;
  }

  start(): void {
    if (this.#timer !== undefined) return;
    const every = this.#modules.setInterval ?? setInterval;
    this.#timer = every(() => {
      if (this.#ticking) return;
      this.#ticking = true;
      this.tick()
        .catch((error: unknown) => this.#logger.error({ err: toError(error) }, 'reconciler pass failed'))
        .finally(() => {
          this.#ticking = false;
        });
    }, this.#options.intervalMs ?? 1000);
    this.#timer.unref();
  }

  /** One pass: start a rebuild for every faulted replica that is back. Resolves once the rebuilds are started. */
  async tick(): Promise<void> {
    const seen = new Set<string>();
    for (const session of this.#modules.sessions()) {
      if (session.stopped) continue;
      const graceMs = this.#modules.cluster.volume(session.name)?.graceMs ?? Number.POSITIVE_INFINITY;
      for (const status of session.replicaStatuses()) {
        const key = `${session.name}/${status.nodeId}`;
        seen.add(key);
        const record = this.#record(key);
        if (status.state === 'in-sync') {
          record.faultedSinceMs = null;
          record.graceExpired = false;
          continue;
        }
        record.faultedSinceMs ??= this.#nowMs();
        if (status.rebuild !== null) record.progress = status.rebuild;
        this.#checkGrace(session.name, status.nodeId, record, graceMs);
        const nodeUp = this.#modules.cluster.nodeIsUp(status.nodeId);
        // Past its grace a replica is replaced when its node is down, or up but failing every rebuild (a bad disk).
        const replaceable = status.state === 'faulted' && record.graceExpired && (!nodeUp || record.rebuildFailed) && !record.noReplacementNode;
        if (replaceable && record.replacing === undefined && record.running === undefined && this.#modules.replacement !== undefined) {
          record.replacing = this.#replaceStep(session, status.nodeId, this.#modules.replacement, record);
        }
        const beingReplaced = replaceable && this.#modules.replacement !== undefined;
        if (status.state === 'faulted' && record.running === undefined && !beingReplaced && nodeUp && this.#runningCount() < (this.#options.maxConcurrentRebuilds ?? 2)) {
          record.running = this.#rebuild(session, status.nodeId, record);
        }
      }
    }
    for (const [key, record] of this.#records) if (!seen.has(key) && record.running === undefined && record.replacing === undefined) this.#records.delete(key);
  }

  /** Resolves once every rebuild started so far has settled (tests, shutdown). */
  async settled(): Promise<void> {
    await Promise.all([...this.#records.values()].flatMap((record) => [record.running, record.replacing]));
  }

  views(volume?: string): ReplicaRepairView[] {
    return [...this.#records.entries()]
      .filter(([key]) => volume === undefined || key.startsWith(`${volume}/`))
      .map(([key, record]) => {
        const slash = key.lastIndexOf('/');
        return {
          volume: key.slice(0, slash),
          nodeId: key.slice(slash + 1),
          faultedSinceMs: record.faultedSinceMs,
          rebuilding: record.running !== undefined,
          progress: record.progress,
          graceExpired: record.graceExpired,
          lastError: record.lastError,
        };
      });
  }

  close(): void {
    if (this.#timer !== undefined) (this.#modules.clearInterval ?? clearInterval)(this.#timer);
    this.#timer = undefined;
  }

  #rebuild(session: VolumeSession, nodeId: string, record: RepairRecord): Promise<void> {
    return this.#copySnapshots(session, nodeId)
      .then(() =>
        session.rebuild(nodeId, (progress) => {
          record.progress = progress;
        }),
      )
      .then(
        (progress) => {
          record.lastError = null;
          record.rebuildFailed = false;
          record.faultedSinceMs = null;
          this.#logger.info({ volume: session.name, replica: nodeId, ...progress }, 'replica rebuilt and back in sync');
        },
        (error: unknown) => {
          record.lastError = toError(error).message;
          record.rebuildFailed = true;
          // Alternate: after a failed rebuild in place, look for a replacement node again.
          record.noReplacementNode = false;
          this.#logger.warn({ err: toError(error), volume: session.name, replica: nodeId }, 'replica rebuild did not complete; retrying later');
        },
      )
      .finally(() => {
        record.running = undefined;
      });
  }

  /** Before the live catch-up (which then overwrites the volume with live data); a failure fails this attempt. */
  async #copySnapshots(session: VolumeSession, nodeId: string): Promise<void> {
    const snapshots = this.#modules.snapshots;
    if (snapshots === undefined) return;
    const outcome = await snapshots.copyMissing(session, nodeId);
    if (outcome.copied.length > 0 || outcome.skipped.length > 0) {
      this.#logger.info({ volume: session.name, replica: nodeId, copied: outcome.copied, skipped: outcome.skipped }, 'snapshots rebuilt before the live catch-up');
    }
  }

  #replaceStep(session: VolumeSession, lost: string, port: ReplicaReplacementPort, record: RepairRecord): Promise<void> {
    return this.#nextReplacementStep(session, lost, port)
      .then((progressing) => {
        // Nowhere to go: rebuilding in place stays the only way back (the disk may have been fixed).
        record.noReplacementNode = !progressing;
      })
      .catch((error: unknown) => {
        record.lastError = toError(error).message;
        this.#logger.warn({ err: toError(error), volume: session.name, replica: lost }, 'replacing a lost replica did not progress; retrying later');
      })
      .finally(() => {
        record.replacing = undefined;
      });
  }

  /** One idempotent step per pass, decided from the session and the committed state; false when no node can take the replica. */
  async #nextReplacementStep(session: VolumeSession, lost: string, port: ReplicaReplacementPort): Promise<boolean> {
    const wanted = port.replicaCount(session.name);
    if (wanted === undefined) return true;
    const statuses = session.replicaStatuses();
    const served = new Set(statuses.map((status) => status.nodeId));
    // A replica committed but not served here yet (an earlier step failed half-way): serve it first.
    const committed = this.#modules.cluster.volume(session.name)?.replicas ?? [];
    const unserved = committed.find((replica) => !served.has(replica.nodeId));
    if (unserved !== undefined) {
      await session.addReplica(unserved.nodeId);
      return true;
    }
    const inSyncOthers = statuses.filter((status) => status.state === 'in-sync' && status.nodeId !== lost).length;
    if (inSyncOthers >= wanted) {
      await port.removeReplica(session.name, lost);
      session.removeReplica(lost);
      this.#logger.info({ volume: session.name, replica: lost }, 'lost replica replaced and removed');
      return true;
    }
    // A replacement already joined: the ordinary rebuild path is copying it; wait.
    if (statuses.some((status) => status.nodeId !== lost && status.state !== 'in-sync' && this.#modules.cluster.nodeIsUp(status.nodeId))) return true;
    const nodeId = port.chooseReplacementNode(session.name);
    if (nodeId === undefined) {
      this.#logger.warn({ volume: session.name, replica: lost }, 'no up node can take a replacement replica; waiting');
      return false;
    }
    await port.addReplica(session.name, nodeId);
    await session.addReplica(nodeId);
    this.#logger.warn({ volume: session.name, lost, replacement: nodeId }, 'replica lost past its grace period: a replacement was added and will be rebuilt in full');
    return true;
  }

  #checkGrace(volume: string, nodeId: string, record: RepairRecord, graceMs: number): void {
    if (record.graceExpired || record.faultedSinceMs === null) return;
    if (this.#nowMs() - record.faultedSinceMs <= graceMs) return;
    record.graceExpired = true;
    this.#logger.warn({ volume, replica: nodeId, graceMs }, 'replica out for longer than the grace period: it should be replaced elsewhere');
  }

  #record(key: string): RepairRecord {
    let record = this.#records.get(key);
    if (record === undefined) {
      record = { faultedSinceMs: null, running: undefined, replacing: undefined, progress: null, graceExpired: false, lastError: null, rebuildFailed: false, noReplacementNode: false };
      this.#records.set(key, record);
    }
    return record;
  }

  #runningCount(): number {
    let running = 0;
    for (const record of this.#records.values()) if (record.running !== undefined) running += 1;
    return running;
  }
}
