import type { Logger } from 'pino';
import { toError } from '../../common/plinth-error.js';
import type { CatchUpProgress } from '../../blockdev/volume/catch-up.js';
import type { DataPlaneCluster } from '../volume/data-plane-cluster.js';
import type { VolumeSession } from '../volume/volume-session.js';

/**
 * The owner-side reconciler (ARCHITECTURE "daemon/reconciler", issue 4
 * "Rebuild"): every `intervalMs`, each faulted replica of a volume served
 * here whose node is up again is caught up while live writes continue and
 * committed back in-sync (VolumeSession.rebuild). Progress and how long each
 * replica has been out are kept for `volume inspect` and metrics.
 *
 * A replica out for longer than the volume's grace period is flagged
 * `graceExpired`; replacing it on another node needs the replica.add /
 * replica.remove commands of the cluster state (see the report).
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
  progress: CatchUpProgress | null;
  graceExpired: boolean;
  lastError: string | null;
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
        if (status.state === 'faulted' && record.running === undefined && this.#modules.cluster.nodeIsUp(status.nodeId) && this.#runningCount() < (this.#options.maxConcurrentRebuilds ?? 2)) {
          record.running = this.#rebuild(session, status.nodeId, record);
        }
      }
    }
    for (const key of this.#records.keys()) if (!seen.has(key) && this.#records.get(key)?.running === undefined) this.#records.delete(key);
  }

  /** Resolves once every rebuild started so far has settled (tests, shutdown). */
  async settled(): Promise<void> {
    await Promise.all([...this.#records.values()].map((record) => record.running));
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
    return session
      .rebuild(nodeId, (progress) => {
        record.progress = progress;
      })
      .then(
        (progress) => {
          record.lastError = null;
          record.faultedSinceMs = null;
          this.#logger.info({ volume: session.name, replica: nodeId, ...progress }, 'replica rebuilt and back in sync');
        },
        (error: unknown) => {
          record.lastError = toError(error).message;
          this.#logger.warn({ err: toError(error), volume: session.name, replica: nodeId }, 'replica rebuild did not complete; retrying later');
        },
      )
      .finally(() => {
        record.running = undefined;
      });
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
      record = { faultedSinceMs: null, running: undefined, progress: null, graceExpired: false, lastError: null };
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
