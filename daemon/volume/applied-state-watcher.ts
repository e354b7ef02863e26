import type { Logger } from 'pino';
import { PeriodicPass } from '../lifecycle/periodic-pass.js';
import { toError } from '../../common/plinth-error.js';
import type { Pool } from '../../blockdev/pool/pool-types.js';
import type { ClusterState, VolumeRecord } from '../state/cluster-state.js';
import type { AppliedListener, CommandOutcome } from '../cluster/cluster-state-machine.js';
import type { Command } from '../state/commands.js';

/**
 * Every node reacts to the committed state, not to the API call that changed
 * it (issue 4, cluster lifecycle): a `volume detach` or `volume rm` may be
 * called on any node, so the owner closes its session (and drops its NBD
 * clients) and every replica holder frees its copy once the entry is applied
 * here; a replica moved off this node (drain, data locality, replacement)
 * is freed the same way. The state is immutable (cluster-state.ts), so a
 * change is one identity comparison per poll.
 */

/** A replica this node no longer holds: its volume was deleted or the replica moved away. */
export interface GoneReplica {
  readonly volumeId: string;
  readonly name: string;
  readonly sizeBytes: number;
}

/**
 * Replicas on `nodeId` in `before` that `after` no longer places here. The
 * owner's own replica is left alone: its session still uses the store.
 */
export function replicasGoneFrom(before: ClusterState, after: ClusterState, nodeId: string): GoneReplica[] {
  const now = new Map(Object.values(after.volumes).map((volume) => [volume.id, volume]));
  return Object.values(before.volumes)
    .filter((volume) => {
      const current = now.get(volume.id);
      return holdsReplica(volume, nodeId) && (current === undefined || (!holdsReplica(current, nodeId) && current.attachedTo !== nodeId));
    })
    .map(goneReplica);
}

/**
 * The replica a just-applied entry took from this node: a volume.delete of a
 * volume that held one here, or a replica.remove of this node's. Seen entry
 * by entry, because a volume created and deleted between two polls of the
 * state never shows up in a before/after comparison, though its replica
 * server wrote data here.
 */
export function replicaGoneByEntry(command: Command, outcome: CommandOutcome, nodeId: string): GoneReplica | undefined {
  if (!('type' in outcome) || outcome.type !== 'volume') return undefined;
  const volume = outcome.volume;
  if (command.type === 'volume.delete') return holdsReplica(volume, nodeId) ? goneReplica(volume) : undefined;
  if (command.type === 'replica.remove') return command.nodeId === nodeId && volume.attachedTo !== nodeId ? goneReplica(volume) : undefined;
  return undefined;
}

function goneReplica(volume: VolumeRecord): GoneReplica {
  return { volumeId: volume.id, name: volume.name, sizeBytes: volume.sizeBytes };
}

/** True when the volume with this id exists and is attached to `nodeId`. */
export function attachedHere(state: ClusterState, volumeId: string, nodeId: string): boolean {
  return Object.values(state.volumes).some((volume) => volume.id === volumeId && volume.attachedTo === nodeId);
}

function holdsReplica(volume: VolumeRecord, nodeId: string): boolean {
  return volume.replicas.some((replica) => replica.nodeId === nodeId);
}

/**
 * Free a gone replica's extents in this node's pool. The replica server
 * keeps the pool store of a volume it served open (the pool shares one
 * instance), so it forgets the volume first and the delete closes a store
 * still open: the committed state no longer places the replica here and
 * nobody may write to it any more.
 */
export async function freeVolumeSpace(
  pool: Pool,
  volume: GoneReplica,
  onStep: (step: string) => void = () => undefined,
  forgetReplica: (volumeId: string) => Promise<void> = async () => undefined,
): Promise<void> {
  onStep('letting the replica server forget it');
  await forgetReplica(volume.volumeId);
  // Close and delete in one pool step: two frees of one volume at once (the
  // deleting node's control plane and its watcher) once raced a separate
  // open-close-delete, the second open recreating the store the first had closed.
  onStep('deleting the store');
  await pool.deleteVolume(volume.volumeId, { closeIfOpen: true });
}

const STUCK_PASS_MS = 10_000;

/** A snapshot copy this node's pool holds that the committed state no longer records here (issue 8). */
export interface GoneSnapshot {
  readonly volumeId: string;
  readonly snapshotId: string;
}

/**
 * Issue 8: snapshots `before` recorded on this node that `after` does not
 * (snapshot.delete, the volume deleted, or this node no longer a holder).
 */
export function snapshotsGoneFrom(before: ClusterState, after: ClusterState, nodeId: string): GoneSnapshot[] {
  const now = new Map(Object.values(after.volumes).map((volume) => [volume.id, volume]));
  const gone: GoneSnapshot[] = [];
  for (const volume of Object.values(before.volumes)) {
    const kept = new Set((now.get(volume.id)?.snapshots ?? []).filter((snapshot) => snapshot.holders.includes(nodeId)).map((snapshot) => snapshot.id));
    for (const snapshot of volume.snapshots ?? []) {
      if (snapshot.holders.includes(nodeId) && !kept.has(snapshot.id)) gone.push({ volumeId: volume.id, snapshotId: snapshot.id });
    }
  }
  return gone;
}

/**
 * Issue 8: copies in this node's pool of volumes it holds that no committed
 * snapshot records (a failed create left them, or their delete was
 * committed while this node was down). Only those older than `graceMs`: a
 * snapshot being taken right now exists in the pools a moment before its
 * snapshot.create commits.
 */
export function straySnapshots(state: ClusterState, pool: Pick<Pool, 'listSnapshots'>, nodeId: string, nowMs: number, graceMs: number): GoneSnapshot[] {
  const strays: GoneSnapshot[] = [];
  for (const volume of Object.values(state.volumes)) {
    if (!holdsReplica(volume, nodeId)) continue;
    const recorded = new Set((volume.snapshots ?? []).filter((snapshot) => snapshot.holders.includes(nodeId)).map((snapshot) => snapshot.id));
    for (const info of pool.listSnapshots(volume.id)) {
      if (!recorded.has(info.snapshotId) && nowMs - info.createdAtMs > graceMs) strays.push({ volumeId: volume.id, snapshotId: info.snapshotId });
    }
  }
  return strays;
}

const DEFAULT_STRAY_GRACE_MS = 60_000;
const DEFAULT_STRAY_SWEEP_MS = 30_000;

export interface AppliedStateWatcherOptions {
  readonly nodeId: string;
  /** How often the applied state is compared with the last one seen. */
  readonly intervalMs?: number;
  /** Issue 8: unrecorded snapshot copies younger than this are left alone (being taken). */
  readonly straySnapshotGraceMs?: number;
  /** Issue 8: how often the pool's snapshots are compared with the state (also at the first pass). */
  readonly straySweepIntervalMs?: number;
}

export interface AppliedStateWatcherModules {
  readonly state: () => ClusterState;
  readonly pool: Pool;
  /** Close local sessions and clients of volumes no longer attached here (VolumeExports.releaseUnowned). */
  readonly releaseUnowned: () => Promise<void>;
  readonly logger: Logger;
  /** Every applied entry (ClusterStateMachine.onApplied); returns an unsubscribe. */
  readonly subscribe?: (listener: AppliedListener) => () => void;
  /** The replica server lets go of a volume before its space is freed (ReplicaService.forget). */
  readonly forgetReplica?: (volumeId: string) => Promise<void>;
  readonly setInterval?: (callback: () => void, ms: number) => NodeJS.Timeout;
  readonly clearInterval?: (timer: NodeJS.Timeout) => void;
  /** Issue 8: free one snapshot copy (ReplicaService.snapshots.deleteSnapshot closes its read handle first); default pool.deleteSnapshot. */
  readonly deleteSnapshot?: (volumeId: string, snapshotId: string) => Promise<void>;
  readonly nowMs?: () => number;
}

export class AppliedStateWatcher {
  readonly #options: AppliedStateWatcherOptions;
  readonly #modules: AppliedStateWatcherModules;
  #seen: ClusterState;
  /** Replicas gone from this node, not freed yet (a failed free stays here and is retried). */
  readonly #pendingFrees = new Map<string, GoneReplica>();
  /** Snapshot copies to free here, keyed `${volumeId}/${snapshotId}` (a failed free is retried). */
  readonly #pendingSnapshotFrees = new Map<string, GoneSnapshot>();
  /** Wall-clock ms of the last stray sweep; 0: never (the first pass sweeps). */
  #lastSweepMs = 0;
  readonly #unsubscribe: () => void;
  readonly #loop: PeriodicPass;
  /** What the running pass is doing and since when: a pass stuck for long is reported, not silent. */
  #step = 'idle';
  #passStartedAt = 0;
  #stuckReported = false;
  #closed = false;

  constructor(options: AppliedStateWatcherOptions, modules: AppliedStateWatcherModules) {
    this.#options = options;
    this.#modules = modules;
    this.#seen = modules.state();
    this.#unsubscribe = modules.subscribe?.((command, outcome) => {
      const gone = replicaGoneByEntry(command, outcome, options.nodeId);
      if (gone !== undefined) this.#pendingFrees.set(gone.volumeId, gone);
    }) ?? (() => undefined);
    this.#loop = new PeriodicPass(options.intervalMs ?? 200, () => this.#timedPass(), { ...modules, onOverlap: () => this.#reportIfStuck() });
  }

  start(): void {
    this.#loop.start();
  }

  /** One pass; passes never overlap (a slow pool delete delays the next one). */
  check(): Promise<void> {
    return this.#loop.run();
  }

  #reportIfStuck(): void {
    const runningMs = Date.now() - this.#passStartedAt;
    if (this.#stuckReported || runningMs < STUCK_PASS_MS) return;
    this.#stuckReported = true;
    this.#modules.logger.warn({ step: this.#step, runningMs }, 'reacting to the applied cluster state is taking long');
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#unsubscribe();
    return this.#loop.close();
  }

  async #timedPass(): Promise<void> {
    this.#passStartedAt = Date.now();
    this.#stuckReported = false;
    try {
      await this.#pass();
    } finally {
      this.#step = 'idle';
    }
  }

  async #pass(): Promise<void> {
    if (this.#closed) return;
    await this.#applyChanges();
    await this.#freeSnapshots();
  }

  /**
   * Issue 8: free the snapshot copies the state dropped from this node, and
   * now and then sweep the pool for unrecorded ones (straySnapshots).
   */
  async #freeSnapshots(): Promise<void> {
    const nowMs = (this.#modules.nowMs ?? Date.now)();
    if (nowMs - this.#lastSweepMs >= (this.#options.straySweepIntervalMs ?? DEFAULT_STRAY_SWEEP_MS)) {
      this.#lastSweepMs = nowMs;
      const strays = straySnapshots(this.#seen, this.#modules.pool, this.#options.nodeId, nowMs, this.#options.straySnapshotGraceMs ?? DEFAULT_STRAY_GRACE_MS);
      for (const stray of strays) this.#pendingSnapshotFrees.set(`${stray.volumeId}/${stray.snapshotId}`, stray);
    }
    const free = this.#modules.deleteSnapshot ?? ((volumeId: string, snapshotId: string) => this.#modules.pool.deleteSnapshot(volumeId, snapshotId));
    for (const [key, gone] of this.#pendingSnapshotFrees) {
      this.#step = `freeing snapshot ${gone.snapshotId} of ${gone.volumeId}`;
      try {
        await free(gone.volumeId, gone.snapshotId);
        this.#pendingSnapshotFrees.delete(key);
        this.#modules.logger.info({ volumeId: gone.volumeId, snapshotId: gone.snapshotId }, 'snapshot no longer held here: space freed');
      } catch (err) {
        this.#modules.logger.error({ err: toError(err), volumeId: gone.volumeId, snapshotId: gone.snapshotId }, 'freeing a snapshot failed; retrying');
      }
    }
  }

  async #applyChanges(): Promise<void> {
    const current = this.#modules.state();
    if (current === this.#seen) return;
    const before = this.#seen;
    try {
      // A restored snapshot skips entries: the before/after comparison catches what it took away.
      for (const volume of replicasGoneFrom(before, current, this.#options.nodeId)) this.#pendingFrees.set(volume.volumeId, volume);
      // A whole volume freed takes its snapshots with it (Pool.deleteVolume); the others are freed one by one.
      for (const gone of snapshotsGoneFrom(before, current, this.#options.nodeId)) {
        if (!this.#pendingFrees.has(gone.volumeId)) this.#pendingSnapshotFrees.set(`${gone.volumeId}/${gone.snapshotId}`, gone);
      }
      const gone = [...this.#pendingFrees.values()];
      this.#modules.logger.debug({ volumes: Object.keys(current.volumes).length, gone: gone.map((volume) => volume.name) }, 'reacting to a new applied cluster state');
      // Sessions first: a delete is only committed once detached, so the owner lets go before freeing.
      this.#step = 'closing sessions of volumes no longer attached here';
      await this.#modules.releaseUnowned();
      for (const volume of gone) {
        const setStep = (step: string): void => {
          this.#step = `freeing the replica of ${volume.name} (${volume.volumeId}): ${step}`;
        };
        await freeVolumeSpace(this.#modules.pool, volume, setStep, this.#modules.forgetReplica);
        this.#pendingFrees.delete(volume.volumeId);
        this.#modules.logger.info({ volume: volume.name, id: volume.volumeId }, 'replica no longer held here: space freed');
      }
      this.#seen = current;
    } catch (err) {
      // #seen stays: the next pass retries the same change.
      this.#modules.logger.error({ err: toError(err) }, 'reacting to the applied cluster state failed; retrying');
    }
  }
}
