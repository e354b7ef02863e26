import type pino from 'pino';
import { failpoints, hitFailpoint } from '../../common/failpoints/failpoints.js';
import { isPlinthError, PlinthError, type PlinthErrorCode, toError } from '../../common/plinth-error.js';
import type {
  BlockCapabilities,
  BlockDevice,
  BlockSizeHints,
  ExtentStatus,
  TrimOptions,
  WriteOptions,
  ZeroOptions,
} from '../block-device.js';
import { assertInRange } from '../range.js';
import { allAnswered, FULFILLED } from './all-answered.js';
import { type CatchUpProgress, type CatchUpSource, catchUpReplica } from './catch-up.js';
import { type ByteRegion, mergeByteRegions, type RegionSet } from './dirty-regions.js';
import { type GateState, IoGate } from './io-gate.js';
import { MarkerRefresh } from './marker-refresh.js';
import { RangeLock } from './range-lock.js';
import {
  type ReplicaEntry,
  ReplicaSet,
  type ReplicaSpec,
  type ReplicaState,
  type ReplicaStatus,
  type VolumeReplica,
} from './replica-set.js';
import { assertReplicaFits, volumeBlockSize, volumeCapabilities } from './volume-capabilities.js';

/**
 * The volume controller on the owner node: one BlockDevice over the
 * volume's replicas (ARCHITECTURE "blockdev/volume").
 *   - Mutations (write, trim, writeZeroes, flush) go to every in-sync and
 *     rebuilding replica at once and complete when all answered (invariant 1).
 *   - A replica that fails is reported (modules.reportReplicaFailure commits
 *     "leaves the in-sync set" through Raft) and every mutation it missed
 *     waits for that commit (invariant 2). If the report cannot commit, the
 *     volume is suspended: nothing is acknowledged any more (IO_ERROR).
 *   - FENCED from any replica means a newer owner exists (invariant 3): the
 *     volume stops serving at once, every I/O fails with FENCED, no report.
 *   - Overlapping mutations are serialised by a range lock so every replica
 *     applies them in the same order; disjoint ones run concurrently.
 *   - Reads go to the local in-sync replica first, else a remote one; a
 *     failed read is retried on the next in-sync replica and reported.
 *   - Delta resync across owners: the controller keeps a dirty marker of
 *     every in-sync replica (marker-refresh.ts) and a failure report carries,
 *     for each in-sync replica, the newest marker that predates every write
 *     the failed replica may have missed (resync-markers.ts).
 */

export type VolumeOperation = 'read' | 'write' | 'flush' | 'trim' | 'writeZeroes' | 'blockStatus';

/** Optional hooks for metrics; the controller never depends on them. */
export interface VolumeMetricsHooks {
  ioCompleted?(operation: VolumeOperation, durationMs: number, outcome: 'ok' | PlinthErrorCode): void;
  replicaStateChanged?(replicaId: string, state: ReplicaState): void;
  rebuildProgress?(replicaId: string, progress: CatchUpProgress): void;
}

export interface ReplicatedVolumeOptions {
  readonly volumeId: string;
  readonly sizeBytes: number;
  readonly readOnly?: boolean;
  /** Requests executing at once (default 128); more wait, up to maxWaiting (default 1024), then BUSY. */
  readonly maxInFlight?: number;
  readonly maxWaiting?: number;
  /** Bound on the dirty-region list kept per out-of-sync replica (default 1024). */
  readonly maxDirtyRegions?: number;
  /**
   * Dirty markers of in-sync replicas obtained before this controller was
   * built: they predate every write it will send (delta resync).
   */
  readonly resyncMarkers?: Readonly<Record<string, number>>;
  /** Fetch a fresh marker of a replica at most this often (default 1000). */
  readonly markerRefreshMs?: number;
}

export interface ReplicatedVolumeModules {
  readonly replicas: readonly ReplicaSpec[];
  /**
   * Commit "replica leaves the in-sync set" through Raft; resolves once
   * committed, rejects if it cannot. `resyncMarkers`: for each in-sync
   * replica with one, a dirty marker that predates every write the failed
   * replica missed (record it with the fault: a later rebuilder copies only
   * what changed since).
   */
  readonly reportReplicaFailure: (replicaId: string, error: Error, resyncMarkers: Readonly<Record<string, number>>) => Promise<void>;
  /** Ask a replica for its current dirty marker (persisted before it answers). Absent: no markers are recorded. */
  readonly fetchDirtyMarker?: (replicaId: string) => Promise<number>;
  /** Commit "replica re-enters the in-sync set"; resolves once committed. */
  readonly markInSync: (replicaId: string) => Promise<void>;
  readonly logger: pino.Logger;
  readonly metrics?: VolumeMetricsHooks;
  readonly nowMs?: () => number;
}

export interface RebuildOptions {
  /** What to copy: the regions the replica missed while out (default), everything, or explicit regions. */
  readonly regions?: RegionSet | 'dirty';
  /**
   * With 'dirty' for a replica whose misses this controller did not see (it
   * arrived faulted): what it missed before, for example from the markers
   * recorded with its fault. Asked only after the controller started
   * recording the replica's misses itself, so nothing falls in between;
   * 'all' or a rejection means a full copy.
   */
  readonly missedBefore?: () => Promise<RegionSet>;
  /** Copied too (the replica's own activity log: writes it acknowledged but may have lost). */
  readonly extraRegions?: readonly ByteRegion[];
  /**
   * Runs once the copy is complete, before the replica is committed in-sync
   * (the session tells the replica it is repaired, issue 7); a rejection
   * fails the rebuild like a failed copy.
   */
  readonly beforeJoin?: () => Promise<void>;
  readonly chunkBytes?: number;
  readonly maxParallelChunks?: number;
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: CatchUpProgress) => void;
}

const NO_WRITE_OPTIONS: WriteOptions = Object.freeze({});
const FUA_WRITE: WriteOptions = Object.freeze({ fua: true });

/** Zero-filled writes stand in for writeZeroes on a replica without it; bounded per write. */
const ZERO_FILL_CHUNK_BYTES = 1024 * 1024;

export class ReplicatedVolume implements BlockDevice {
  readonly sizeBytes: number;
  readonly capabilities: BlockCapabilities;
  readonly blockSize: BlockSizeHints;
  private readonly volumeId: string;
  private readonly modules: ReplicatedVolumeModules;
  private readonly logger: pino.Logger;
  private readonly nowMs: () => number;
  private readonly gate: IoGate;
  private readonly rangeLock: RangeLock;
  /** Mutations dispatched and not yet answered by every target replica (see flush()). */
  private readonly mutationsInFlight = new Set<Promise<unknown>>();
  private readonly replicas: ReplicaSet;
  private readonly markers: MarkerRefresh;

  constructor(options: ReplicatedVolumeOptions, modules: ReplicatedVolumeModules) {
    const devices = modules.replicas.map((replica) => replica.device);
    if (devices.length === 0) {
      throw new PlinthError('INVALID_ARGUMENT', `volume ${options.volumeId} needs at least one replica`, {
        volumeId: options.volumeId,
      });
    }
    this.volumeId = options.volumeId;
    this.sizeBytes = options.sizeBytes;
    this.capabilities = volumeCapabilities(devices, options.readOnly ?? false);
    this.blockSize = volumeBlockSize(devices);
    this.modules = modules;
    this.logger = modules.logger.child({ component: 'volume', volumeId: options.volumeId });
    this.nowMs = modules.nowMs ?? (() => performance.now());
    const maxInFlight = options.maxInFlight ?? 128;
    this.gate = new IoGate({ maxInFlight, maxWaiting: options.maxWaiting ?? 1024 });
    // Every lock holder is admitted by the gate (live I/O and catch-up chunks alike).
    this.rangeLock = new RangeLock({ maxEntries: maxInFlight + 1 });
    for (const replica of modules.replicas) {
      assertReplicaFits(replica.id, replica.device, this.sizeBytes, this.capabilities);
    }
    this.replicas = new ReplicaSet(modules.replicas, options.maxDirtyRegions ?? 1024);
    this.markers = new MarkerRefresh(
      options.markerRefreshMs === undefined ? {} : { minIntervalMs: options.markerRefreshMs },
      { fetchMarker: modules.fetchDirtyMarker, nowMs: this.nowMs, logger: this.logger },
    );
    const inSync = this.inSyncIds();
    for (const [replicaId, markerSeq] of Object.entries(options.resyncMarkers ?? {})) {
      if (inSync.includes(replicaId)) this.markers.book.record(replicaId, markerSeq);
    }
    this.markers.refresh(inSync.filter((replicaId) => this.markers.book.markerCount(replicaId) === 0));
  }

  get state(): GateState {
    return this.gate.state;
  }

  replicaStatuses(): ReplicaStatus[] {
    return this.replicas.statuses();
  }

  /** Byte regions a replica missed while out of the in-sync set, or 'all'. */
  dirtyRegions(replicaId: string): RegionSet {
    return this.replicas.get(replicaId).dirty.snapshot();
  }

  // ---- BlockDevice --------------------------------------------------------

  read(offset: number, target: Buffer): Promise<void> {
    return this.track('read', async () => {
      assertInRange(offset, target.length, this.sizeBytes);
      await this.readFromInSync(offset, target, undefined);
    });
  }

  blockStatus(offset: number, lengthBytes: number): Promise<ExtentStatus[]> {
    return this.track('blockStatus', async () => {
      assertInRange(offset, lengthBytes, this.sizeBytes);
      if (!this.capabilities.blockStatus) {
        throw new PlinthError('NOT_SUPPORTED', `volume ${this.volumeId} does not offer block status`);
      }
      return this.withReadSource(undefined, (device) => device.blockStatus(offset, lengthBytes));
    });
  }

  write(offset: number, data: Buffer, options: WriteOptions = {}): Promise<void> {
    const fua = options.fua === true;
    return this.mutate('write', offset, data.length, (device) => {
      if (!fua) return device.write(offset, data, NO_WRITE_OPTIONS);
      // FUA on a replica without it: write, then flush (still durable before we complete).
      return device.capabilities.fua ? device.write(offset, data, FUA_WRITE) : device.write(offset, data, NO_WRITE_OPTIONS).then(() => device.flush());
    });
  }

  trim(offset: number, lengthBytes: number, options: TrimOptions = {}): Promise<void> {
    const fua = options.fua === true;
    if (!this.capabilities.trim) {
      return this.track('trim', () => {
        throw new PlinthError('NOT_SUPPORTED', `volume ${this.volumeId} does not offer trim`);
      });
    }
    return this.mutate('trim', offset, lengthBytes, async (device) => {
      await device.trim(offset, lengthBytes, fua && device.capabilities.fua ? { fua: true } : {});
      if (fua && !device.capabilities.fua) await device.flush();
    });
  }

  writeZeroes(offset: number, lengthBytes: number, options: ZeroOptions = {}): Promise<void> {
    if (options.fastZero === true && (options.noHole === true || !this.capabilities.fastZero)) {
      // Refused before any replica is touched, so replicas cannot disagree about it.
      return this.track('writeZeroes', () => {
        throw new PlinthError('NOT_SUPPORTED', 'fast zero is not possible here', { offset, lengthBytes });
      });
    }
    return this.mutate('writeZeroes', offset, lengthBytes, (device) => zeroReplica(device, offset, lengthBytes, options));
  }

  flush(): Promise<void> {
    return this.track('flush', async () => {
      // Invariant 4: a replica clears a region from its activity log after two
      // flushes. A flush that overtook a write still travelling to another
      // replica would let one replica forget a region that another has not
      // received yet, and an owner crash then would leave them different with
      // neither reporting it. So replicas see a flush only after every
      // mutation dispatched before it has been answered by every replica.
      if (this.mutationsInFlight.size > 0) await Promise.allSettled([...this.mutationsInFlight]);
      await this.fanOut((device) => device.flush());
      this.markers.refresh(this.inSyncIds());
    });
  }

  /** Resolves once the marker fetches started so far have settled (tests). */
  markersSettled(): Promise<void> {
    return this.markers.settled();
  }

  // ---- lifecycle -----------------------------------------------------------

  /** Stop admitting I/O (new requests wait) and resolve once in-flight I/O has drained. */
  pause(): Promise<void> {
    this.logger.info('pausing volume I/O');
    return this.gate.pause();
  }

  resume(): void {
    this.logger.info('resuming volume I/O');
    this.gate.resume();
  }

  /** Refuse new I/O (SHUTTING_DOWN), stop rebuilds, and resolve once in-flight I/O has drained. */
  async close(): Promise<void> {
    this.gate.close(new PlinthError('SHUTTING_DOWN', `volume ${this.volumeId} is closing`, { volumeId: this.volumeId }));
    for (const entry of this.replicas.all()) entry.catchUp?.abort();
    await this.gate.drain();
    this.logger.info('volume closed');
  }

  // ---- membership ------------------------------------------------------------

  /** A new replica (for example a locality or replacement one): starts faulted, rebuilt by a full copy. */
  addReplica(replica: VolumeReplica): void {
    assertReplicaFits(replica.id, replica.device, this.sizeBytes, this.capabilities);
    this.replicas.add(replica, 'faulted');
    this.setState(this.replicas.get(replica.id), 'faulted');
  }

  /** Forget a replica whose removal Raft already committed (retired or replaced). */
  removeReplica(replicaId: string): void {
    const entry = this.replicas.get(replicaId);
    if (entry.state === 'in-sync' && this.replicas.inSyncCount() === 1) {
      throw new PlinthError('INVALID_ARGUMENT', `replica ${replicaId} is the last in-sync replica of ${this.volumeId}`, {
        replicaId,
      });
    }
    entry.catchUp?.abort();
    this.replicas.remove(replicaId);
    this.logger.info({ replicaId }, 'replica removed from the volume');
  }

  /**
   * Catch a faulted replica up while live writes continue, then commit it
   * back into the in-sync set (invariant 4). Also retries markInSync for a
   * replica left in "rebuilding" by a failed earlier attempt.
   */
  async rebuildReplica(replicaId: string, options: RebuildOptions = {}): Promise<CatchUpProgress> {
    const entry = this.replicas.get(replicaId);
    if ((entry.state !== 'faulted' && entry.state !== 'rebuilding') || entry.catchUp !== undefined) {
      throw new PlinthError('INVALID_ARGUMENT', `replica ${replicaId} is ${entry.state}, not ready for a rebuild`, {
        replicaId,
        state: entry.state,
      });
    }
    const controller = new AbortController();
    entry.catchUp = controller;
    let regions: RegionSet;
    try {
      regions = await this.regionsToCopy(entry, options);
    } catch (error) {
      entry.catchUp = undefined;
      throw error;
    }
    // Synchronously from here: a write dispatched from now on reaches the replica itself.
    entry.dirty.clear();
    this.setState(entry, 'rebuilding');
    let progress: CatchUpProgress;
    try {
      // A write dispatched before that (without this replica) and still in flight records its miss
      // only when answered, after regionsToCopy read the dirty set: wait for those and copy them too,
      // or the replica would join the in-sync set without them (invariant 4).
      if (this.mutationsInFlight.size > 0) await Promise.allSettled([...this.mutationsInFlight]);
      regions = withLateMisses(regions, entry.dirty.snapshot());
      entry.dirty.clear();
      progress = await this.copyInto(entry, regions, controller.signal, options);
      await options.beforeJoin?.();
      if (entry.state !== 'rebuilding') {
        throw new PlinthError('IO_ERROR', `replica ${replicaId} failed before joining the in-sync set`, { replicaId, state: entry.state });
      }
    } catch (error) {
      this.abandonRebuild(entry, regions, error);
      throw error;
    } finally {
      entry.catchUp = undefined;
    }
    await this.commitJoin(entry);
    return progress;
  }

  // ---- internals -------------------------------------------------------------

  /**
   * What a rebuild copies. A replica that arrived faulted has 'all' as its
   * dirty set; with `missedBefore` the controller first starts recording its
   * misses precisely (clear), then asks what it missed before: a write
   * missed while the question is out is in one answer or the other.
   */
  private async regionsToCopy(entry: ReplicaEntry, options: RebuildOptions): Promise<RegionSet> {
    if (options.regions !== undefined && options.regions !== 'dirty') return options.regions;
    const extra = options.extraRegions ?? [];
    const missed = entry.dirty.snapshot();
    if (missed !== 'all') return mergeByteRegions([...missed, ...extra]);
    if (options.missedBefore === undefined) return 'all';
    entry.dirty.clear();
    let before: RegionSet;
    try {
      before = await options.missedBefore();
    } catch (error) {
      entry.dirty.markAll();
      this.logger.warn({ err: toError(error), replicaId: entry.replica.id }, 'what the replica missed is unknown: full copy');
      return 'all';
    }
    this.gate.assertNotStopped();
    if (this.replicas.all().every((candidate) => candidate !== entry) || entry.state !== 'faulted') {
      throw new PlinthError('INVALID_ARGUMENT', `replica ${entry.replica.id} changed while its rebuild was being planned`, { replicaId: entry.replica.id });
    }
    const since = entry.dirty.snapshot();
    if (before === 'all' || since === 'all') {
      entry.dirty.markAll();
      return 'all';
    }
    return mergeByteRegions([...before, ...since, ...extra]);
  }

  private inSyncIds(): string[] {
    return this.replicas.all().filter((entry) => entry.state === 'in-sync').map((entry) => entry.replica.id);
  }

  private async copyInto(
    entry: ReplicaEntry,
    regions: RegionSet,
    signal: AbortSignal,
    options: RebuildOptions,
  ): Promise<CatchUpProgress> {
    const replicaId = entry.replica.id;
    const signals = options.signal === undefined ? [signal] : [signal, options.signal];
    this.logger.info({ replicaId, regions: regions === 'all' ? 'all' : regions.length }, 'replica catch-up starting');
    const source: CatchUpSource = { read: (offset, target) => this.readFromInSync(offset, target, replicaId) };
    if (this.capabilities.blockStatus) {
      source.blockStatus = (offset, lengthBytes) =>
        this.withReadSource(replicaId, (device) => device.blockStatus(offset, lengthBytes));
    }
    const progress = await catchUpReplica(
      source,
      entry.replica.device,
      regions,
      {
        rangeLock: this.rangeLock,
        ...(options.chunkBytes === undefined ? {} : { chunkBytes: options.chunkBytes }),
        ...(options.maxParallelChunks === undefined ? {} : { maxParallelChunks: options.maxParallelChunks }),
        signal: AbortSignal.any(signals),
        // Each chunk counts as in-flight I/O: pause() and close() drain it like a client request.
        runChunk: async (section) => {
          await this.gate.enter();
          try {
            await section();
            this.gate.assertNotStopped();
          } finally {
            this.gate.leave();
          }
        },
        onProgress: (current) => {
          entry.rebuild = current;
          this.modules.metrics?.rebuildProgress?.(replicaId, current);
          options.onProgress?.(current);
        },
      },
    );
    if (entry.state !== 'rebuilding') {
      throw new PlinthError('IO_ERROR', `replica ${replicaId} failed during catch-up`, { replicaId, state: entry.state });
    }
    this.logger.info({ replicaId, ...progress }, 'replica catch-up complete');
    return progress;
  }

  /** The copy stopped part-way: remember everything it was meant to copy for the next attempt. */
  private abandonRebuild(entry: ReplicaEntry, regions: RegionSet, error: unknown): void {
    if (regions === 'all') entry.dirty.markAll();
    else for (const region of regions) entry.dirty.add(region.offset, region.lengthBytes);
    if (entry.state === 'rebuilding') this.setState(entry, 'faulted');
    this.logger.warn({ err: toError(error), replicaId: entry.replica.id }, 'replica catch-up failed');
  }

  /**
   * markInSync through Raft. The replica keeps receiving writes meanwhile
   * ("joining"); if one fails, its failure report waits for this commit so
   * Raft never ends with a lagging replica in the in-sync set.
   */
  private async commitJoin(entry: ReplicaEntry): Promise<void> {
    const replicaId = entry.replica.id;
    this.setState(entry, 'joining');
    const join = this.modules.markInSync(replicaId).then(
      () => true,
      (error: unknown) => {
        this.logger.warn({ err: toError(error), replicaId }, 'markInSync did not commit');
        return false;
      },
    );
    entry.join = join;
    const joined = await join;
    entry.join = undefined;
    if (entry.state !== 'joining') {
      throw new PlinthError('IO_ERROR', `replica ${replicaId} failed while joining the in-sync set`, { replicaId });
    }
    if (!joined) {
      // Still current and still receiving writes: a later rebuildReplica retries the commit.
      this.setState(entry, 'rebuilding');
      throw new PlinthError('IO_ERROR', `replica ${replicaId} caught up but could not be committed in-sync`, { replicaId });
    }
    entry.rebuild = null;
    this.setState(entry, 'in-sync');
    this.logger.info({ replicaId }, 'replica back in sync');
  }

  /**
   * A slot in the I/O gate: undefined when one was free now (no promise on
   * the usual path), else the wait for one; a refusal is counted as failed.
   */
  private admit(operation: VolumeOperation): Promise<void> | undefined {
    if (this.gate.tryEnter()) return undefined;
    return this.gate.enter().catch((error: unknown) => {
      this.recordFailure(operation, 0, error);
      throw error;
    });
  }

  private recordFailure(operation: VolumeOperation, durationMs: number, error: unknown): void {
    this.modules.metrics?.ioCompleted?.(operation, durationMs, isPlinthError(error) ? error.code : 'INTERNAL');
  }

  /** Admission, timing and metrics around one client request. */
  private async track<T>(operation: VolumeOperation, section: () => Promise<T> | T): Promise<T> {
    const startedMs = this.nowMs();
    const waiting = this.admit(operation);
    if (waiting !== undefined) await waiting;
    try {
      const result = await section();
      this.modules.metrics?.ioCompleted?.(operation, this.nowMs() - startedMs, 'ok');
      return result;
    } catch (error) {
      this.recordFailure(operation, this.nowMs() - startedMs, error);
      throw error;
    } finally {
      this.gate.leave();
    }
  }

  /**
   * track() + range lock + fanOut() for one mutation, as one async function:
   * the data path's most frequent call (perf round 2 of issues 4/5: with
   * allSettled, the nested async layers, a closure per write and a Set of
   * acknowledgements, ~15 % of the owner's JS-heap garbage per write went).
   */
  private async mutate(
    operation: VolumeOperation,
    offset: number,
    lengthBytes: number,
    apply: (device: BlockDevice) => Promise<void>,
  ): Promise<void> {
    const startedMs = this.nowMs();
    const waiting = this.admit(operation);
    if (waiting !== undefined) await waiting;
    try {
      assertInRange(offset, lengthBytes, this.sizeBytes);
      if (this.capabilities.readOnly) {
        throw new PlinthError('READ_ONLY', `volume ${this.volumeId} is read-only`, { volumeId: this.volumeId });
      }
      const release = this.rangeLock.tryAcquire(offset, lengthBytes) ?? (await this.rangeLock.acquire(offset, lengthBytes));
      try {
        await this.fanOut(apply, offset, lengthBytes);
      } finally {
        release();
      }
      this.modules.metrics?.ioCompleted?.(operation, this.nowMs() - startedMs, 'ok');
    } catch (error) {
      this.recordFailure(operation, this.nowMs() - startedMs, error);
      throw error;
    } finally {
      this.gate.leave();
    }
  }

  /**
   * Send one mutation to every write target; complete only as invariants 1
   * and 2 allow. `offset` is undefined for a flush (no range: nothing to
   * record as missed, no resync-marker bookkeeping).
   */
  private async fanOut(apply: (device: BlockDevice) => Promise<void>, offset?: number, lengthBytes = 0): Promise<void> {
    this.gate.assertNotStopped();
    const targets = this.replicas.writeTargets();
    const inSyncAtDispatch = targets.filter((entry) => entry.state === 'in-sync');
    if (inSyncAtDispatch.length === 0) throw this.noInSyncReplicaError();
    // A mutation stays unsettled for the marker choice until every failure it caused was reported.
    const dispatch = offset === undefined ? undefined : this.markers.book.dispatch();
    let acknowledged: readonly ReplicaEntry[] = targets;
    try {
      const answered = allAnswered(targets.map((entry) => applyTo(apply, entry.replica.device)));
      if (offset !== undefined) this.mutationsInFlight.add(answered);
      // allAnswered never rejects: the delete always runs, with no extra promise per write.
      const answers = await answered;
      this.mutationsInFlight.delete(answered);
      // Every target acknowledged (the healthy case): `targets` itself is the list, nothing allocated.
      if (answers !== undefined) {
        const fulfilled: ReplicaEntry[] = [];
        for (let index = 0; index < answers.length; index += 1) {
          const answer = answers[index];
          const entry = targets[index];
          if (entry === undefined || answer === undefined) continue;
          if (answer === FULFILLED) fulfilled.push(entry);
          else this.onReplicaError(entry, answer.reason);
        }
        acknowledged = fulfilled;
      }
    } finally {
      if (dispatch !== undefined) this.markers.book.settled(dispatch);
    }
    if (offset !== undefined) this.replicas.recordMissed(offset, lengthBytes, acknowledged);
    this.gate.assertNotStopped();
    // Invariant 2: every in-sync replica that missed this must have left the set first.
    const pendingLeaves = this.replicas.pendingLeavesExcept(acknowledged);
    if (pendingLeaves.length > 0) {
      const committed = await Promise.all(pendingLeaves);
      this.gate.assertNotStopped();
      if (committed.includes(false)) throw this.suspendedError();
    }
    if (!inSyncAtDispatch.some((entry) => entry.state === 'in-sync' && acknowledged.includes(entry))) {
      throw new PlinthError('IO_ERROR', `no in-sync replica of volume ${this.volumeId} completed the request`, {
        volumeId: this.volumeId,
      });
    }
    if (failpoints.armed && offset !== undefined) await hitFailpoint('controller.write.after-fanout', this.volumeId);
  }

  /** Read from in-sync replicas, local first; a failing one is reported and the next one tried. */
  private readFromInSync(offset: number, target: Buffer, excludeId: string | undefined): Promise<void> {
    return this.withReadSource(excludeId, (device) => device.read(offset, target));
  }

  private async withReadSource<T>(excludeId: string | undefined, attempt: (device: BlockDevice) => Promise<T>): Promise<T> {
    this.gate.assertNotStopped();
    const sources = this.replicas.readSources().filter((entry) => entry.replica.id !== excludeId);
    if (sources.length === 0) throw this.noInSyncReplicaError();
    let lastError: unknown;
    for (const entry of sources) {
      if (entry.state !== 'in-sync') continue;
      let result: T;
      try {
        result = await attempt(entry.replica.device);
      } catch (error) {
        this.onReplicaError(entry, error);
        this.gate.assertNotStopped();
        lastError = error;
        continue;
      }
      this.gate.assertNotStopped();
      return result;
    }
    throw new PlinthError('IO_ERROR', `read failed on every in-sync replica of volume ${this.volumeId}`, {
      volumeId: this.volumeId,
    }, { cause: lastError });
  }

  private onReplicaError(entry: ReplicaEntry, reason: unknown): void {
    const error = toError(reason);
    const replicaId = entry.replica.id;
    if (isPlinthError(error, 'FENCED')) {
      this.fence(replicaId, error);
      return;
    }
    if (entry.state === 'rebuilding') {
      // Not in Raft's in-sync set: no report needed; the catch-up stops and a later rebuild resumes.
      this.logger.warn({ err: error, replicaId }, 'rebuilding replica failed');
      this.setState(entry, 'faulted');
      entry.catchUp?.abort();
      return;
    }
    if (entry.state !== 'in-sync' && entry.state !== 'joining') return; // already leaving or out
    // Chosen now, while every write this replica may have missed is still unsettled or later.
    const markers = this.markers.book.markersBefore(this.inSyncIds().filter((id) => id !== replicaId));
    this.logger.warn({ err: error, replicaId, resyncMarkers: markers }, 'replica failed; reporting it out of the in-sync set');
    const afterJoin = entry.join ?? Promise.resolve(true);
    this.setState(entry, 'leaving');
    entry.leave = afterJoin
      .then(() => this.modules.reportReplicaFailure(replicaId, error, markers))
      .then(
        () => {
          entry.leave = undefined;
          if (entry.state === 'leaving') this.setState(entry, 'faulted');
          this.logger.info({ replicaId }, 'replica left the in-sync set (committed)');
          return true;
        },
        (reportError: unknown) => {
          this.suspend(replicaId, toError(reportError));
          return false;
        },
      );
  }

  private fence(replicaId: string, error: PlinthError): void {
    if (this.gate.state === 'fenced') return;
    this.logger.error({ err: error, replicaId }, 'replica reports a newer owner: volume fenced, no longer serving');
    this.gate.stop(
      'fenced',
      new PlinthError('FENCED', `volume ${this.volumeId} has a newer owner`, { ...error.details, volumeId: this.volumeId }, {
        cause: error,
      }),
    );
    for (const entry of this.replicas.all()) entry.catchUp?.abort();
  }

  private suspend(replicaId: string, reportError: Error): void {
    this.logger.error(
      { err: reportError, replicaId },
      'could not commit a replica failure: volume suspended, no more writes are acknowledged',
    );
    this.gate.stop('suspended', this.suspendedError());
    for (const entry of this.replicas.all()) entry.catchUp?.abort();
  }

  private suspendedError(): PlinthError {
    return new PlinthError(
      'IO_ERROR',
      `volume ${this.volumeId} is suspended: a replica failure could not be committed (no quorum?)`,
      { volumeId: this.volumeId, reason: 'suspended' },
    );
  }

  private noInSyncReplicaError(): PlinthError {
    return new PlinthError('IO_ERROR', `volume ${this.volumeId} has no in-sync replica`, {
      volumeId: this.volumeId,
      reason: 'no-in-sync-replica',
    });
  }

  private setState(entry: ReplicaEntry, state: ReplicaState): void {
    const wasInSync = entry.state === 'in-sync';
    entry.state = state;
    // Only replicas in the in-sync set offer markers: one that was out has no continuous history to vouch for.
    if (wasInSync && state !== 'in-sync') this.markers.forget(entry.replica.id);
    if (!wasInSync && state === 'in-sync') this.markers.refresh([entry.replica.id], true);
    this.modules.metrics?.replicaStateChanged?.(entry.replica.id, state);
  }
}

/** The regions a rebuild planned, plus what the replica missed while the plan was made. */
function withLateMisses(planned: RegionSet, late: RegionSet): RegionSet {
  if (planned === 'all' || late === 'all') return 'all';
  return late.length === 0 ? planned : mergeByteRegions([...planned, ...late]);
}

/** `apply(device)`, with a synchronous throw turned into a rejection: it is that replica's failure like any other. */
function applyTo(apply: (device: BlockDevice) => Promise<void>, device: BlockDevice): Promise<void> {
  try {
    return apply(device);
  } catch (error) {
    return Promise.reject(toError(error));
  }
}

/** writeZeroes on one replica, emulated with zero-filled writes where it lacks the operation. */
async function zeroReplica(device: BlockDevice, offset: number, lengthBytes: number, options: ZeroOptions): Promise<void> {
  const fua = options.fua === true;
  if (device.capabilities.writeZeroes) {
    const perDevice = fua && !device.capabilities.fua ? { ...options, fua: false } : options;
    try {
      await device.writeZeroes(offset, lengthBytes, perDevice);
    } catch (error) {
      // The volume offered fast zero because every replica did; one refusing anyway must not
      // leave replicas different, so it zeroes the slow way instead of failing out of the set.
      if (options.fastZero !== true || !isPlinthError(error, 'NOT_SUPPORTED')) throw error;
      await device.writeZeroes(offset, lengthBytes, { ...perDevice, fastZero: false });
    }
  } else {
    for (let done = 0; done < lengthBytes; done += ZERO_FILL_CHUNK_BYTES) {
      const length = Math.min(ZERO_FILL_CHUNK_BYTES, lengthBytes - done);
      await device.write(offset + done, Buffer.alloc(length));
    }
  }
  if (fua && (!device.capabilities.fua || !device.capabilities.writeZeroes)) await device.flush();
}
