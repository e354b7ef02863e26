import type pino from 'pino';
import { toError } from '../../common/plinth-error.js';
import { ResyncMarkers } from './resync-markers.js';

/**
 * Keeps a fresh dirty marker of every in-sync replica in the controller's
 * ResyncMarkers (issue 4 "Delta resync"), so that a replica failing later
 * is recorded with a recent one and a later rebuild copies little. Markers
 * are fetched at most once per `minIntervalMs` per replica, one at a time,
 * after flushes and when a replica (re)enters the in-sync set. A fetch that
 * fails only leaves an older marker in place (more copying, never less).
 */

export interface MarkerRefreshOptions {
  /** Default 1000: each fetch costs the replica one synced metadata write. */
  readonly minIntervalMs?: number;
  readonly maxMarkersPerReplica?: number;
}

export interface MarkerRefreshModules {
  /** Ask a replica for its current marker; the replica persists it before answering. Absent: no markers. */
  readonly fetchMarker: ((replicaId: string) => Promise<number>) | undefined;
  readonly nowMs: () => number;
  readonly logger: pino.Logger;
}

export class MarkerRefresh {
  readonly book: ResyncMarkers;
  readonly #minIntervalMs: number;
  readonly #modules: MarkerRefreshModules;
  readonly #lastStartMs = new Map<string, number>();
  readonly #running = new Map<string, { readonly promise: Promise<void>; readonly epoch: number }>();
  /** Bumped by forget(): a fetch that started before must not record its answer. */
  readonly #epochs = new Map<string, number>();

  constructor(options: MarkerRefreshOptions, modules: MarkerRefreshModules) {
    this.book = new ResyncMarkers(options.maxMarkersPerReplica ?? 8);
    this.#minIntervalMs = options.minIntervalMs ?? 1000;
    this.#modules = modules;
  }

  /** Start a fetch for each replica not fetched within the interval (all of them with `force`). */
  refresh(replicaIds: Iterable<string>, force = false): void {
    const fetchMarker = this.#modules.fetchMarker;
    if (fetchMarker === undefined) return;
    const now = this.#modules.nowMs();
    for (const replicaId of replicaIds) {
      const epoch = this.#epochs.get(replicaId) ?? 0;
      if (this.#running.get(replicaId)?.epoch === epoch) continue;
      const last = this.#lastStartMs.get(replicaId);
      if (!force && last !== undefined && now - last < this.#minIntervalMs) continue;
      this.#lastStartMs.set(replicaId, now);
      const promise = fetchMarker(replicaId)
        .then(
          (markerSeq) => {
            if ((this.#epochs.get(replicaId) ?? 0) === epoch) this.book.record(replicaId, markerSeq);
          },
          (error: unknown) => {
            this.#modules.logger.warn({ err: toError(error), replicaId }, 'could not refresh the dirty marker; keeping the older one');
          },
        )
        .finally(() => {
          if (this.#running.get(replicaId)?.promise === promise) this.#running.delete(replicaId);
        });
      this.#running.set(replicaId, { promise, epoch });
    }
  }

  /** The replica left the in-sync set: drop its markers and any answer still on its way. */
  forget(replicaId: string): void {
    this.#epochs.set(replicaId, (this.#epochs.get(replicaId) ?? 0) + 1);
    this.#lastStartMs.delete(replicaId);
    this.book.forget(replicaId);
  }

  /** Resolves once the fetches started so far have settled (tests, shutdown). */
  async settled(): Promise<void> {
    await Promise.all([...this.#running.values()].map((running) => running.promise));
  }
}
