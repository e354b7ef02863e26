import type { Logger } from 'pino';
import { PlinthError } from '../../common/plinth-error.js';
import { failpoints, hitFailpoint } from '../../common/failpoints/failpoints.js';
import type { Pool, VolumeStore } from '../pool/pool-types.js';
import { assertInRange } from '../range.js';
import { ACTIVITY_REGION_BYTES, VolumeActivity } from './activity-log.js';
import { GenerationFence } from './generation-fence.js';
import { GENERATION_KEY_PREFIX, type ReplicaDatabase, SYNC_WRITE, uncleanKey } from './replica-database.js';
import {
  decodeDirtyMarker,
  encodeOpenAnswer,
  encodeRegionList,
  encodeStatusRuns,
  MAX_REGIONS_PER_REPLY,
  MAX_STATUS_RUNS,
  type RegionList,
} from './replica-payloads.js';
import { Opcode, type ReplicaRequest, ReplicaProtocolError, RequestFlag } from './replica-protocol.js';
import { SnapshotOps } from './snapshot-ops.js';
import { SNAPSHOT_OPS } from './snapshot-payloads.js';

/**
 * The node-wide half of the replica server: the Pool's volume stores, the
 * generation fence and the activity logs, shared by every connection.
 * `execute` runs one authenticated request and returns the reply payload or
 * throws a PlinthError that the connection maps to a status.
 *
 * Order per request: fence (invariant 3), then range checks, then the
 * activity mark (invariant 4), then the store.
 *
 * Issue 7 ("Prove it loses nothing"), two rules kept here:
 *   - GET_ACTIVITY is a barrier: it is answered only after every request of
 *     the volume admitted before it has settled. A rebuild asks it first
 *     (daemon/volume/volume-session.ts rebuild), by the same owner and
 *     generation as a write stuck in a stalled disk since before the fault,
 *     so the generation fence does not hold that write back; the barrier
 *     keeps it from landing after the catch-up copied a newer version.
 *   - a volume held here at an unclean start (crash, power cut) is flagged
 *     durably (`uncleanKey`) until its owner says the replica was made
 *     identical to a good source (MARK_REPAIRED); activity answers carry
 *     the flag so a failover does not pick it as the source.
 */

export interface ReplicaServiceOptions {
  readonly maxIoBytes: number;
  readonly regionSizeBytes?: number;
}

/** uncleanKey's value; its presence is what counts. */
const UNCLEAN_VALUE = Buffer.from([1]);
/** Puts per database batch when flagging volumes at an unclean start. */
const MAX_FLAGS_PER_BATCH = 1024;

export interface ReplicaServiceModules {
  readonly pool: Pool;
  readonly db: ReplicaDatabase;
  readonly logger: Logger;
}

interface OpenVolume {
  readonly store: VolumeStore;
  readonly activity: VolumeActivity;
}

export class ReplicaService {
  readonly #options: ReplicaServiceOptions;
  readonly #modules: ReplicaServiceModules;
  readonly #fence: GenerationFence;
  readonly #volumes = new Map<string, Promise<OpenVolume>>();
  /** The volumes whose open completed, for the synchronous write path. */
  readonly #ready = new Map<string, OpenVolume>();
  /** Requests past the fence, per volume: a generation raise waits for them (no older write lands after it). */
  readonly #inFlight = new Map<string, Set<Promise<unknown>>>();
  /** Open volumes flagged "may lack writes it acknowledged" (uncleanKey, read at open). */
  readonly #unclean = new Set<string>();
  /** Issue 8: the snapshot ops and the snapshot read handles (snapshot-ops.ts). */
  readonly snapshots: SnapshotOps;

  constructor(options: ReplicaServiceOptions, modules: ReplicaServiceModules) {
    this.#options = options;
    this.#modules = modules;
    this.snapshots = new SnapshotOps({ maxIoBytes: options.maxIoBytes }, modules);
    this.#fence = new GenerationFence({ db: modules.db, onRaise: (volumeId) => this.#drain(volumeId) });
  }
  /** True when a newer owner's generation has been admitted for the volume (sync, in memory). */
  isFenced(volumeId: string, generation: number): boolean {
    return this.#fence.isFenced(volumeId, generation);
  }


  get maxIoBytes(): number {
    return this.#options.maxIoBytes;
  }

  /**
   * Run one request of a connection that OPENed `opened`. `readTarget`: a
   * READ fills it and answers it (the in-process caller, local-replica.ts,
   * then copies nothing); ignored unless its length is the READ's.
   */
  async execute(request: ReplicaRequest, opened: Set<string>, readTarget?: Buffer): Promise<Buffer> {
    if (request.opcode === Opcode.PING) return Buffer.alloc(0);
    if (request.opcode === Opcode.HELLO) {
      throw new PlinthError('INVALID_ARGUMENT', 'HELLO after the handshake completed');
    }
    await this.#fence.admit(request.volumeId, request.generation);
    if (SNAPSHOT_OPS.has(request.opcode)) return this.#snapshotOp(request);
    const set = this.#inFlightOf(request.volumeId);
    // The barrier (class comment): what was admitted before it, itself excluded.
    const earlier = request.opcode === Opcode.GET_ACTIVITY && set.size > 0 ? [...set] : undefined;
    const work = earlier === undefined ? this.#run(request, opened, readTarget) : this.#runAfter(earlier, request, opened);
    set.add(work);
    try {
      return await work;
    } finally {
      set.delete(work);
    }
  }

  /**
   * WRITE without a promise, when nothing has to wait: the generation is
   * the current one (invariant 3, no raise in progress), the volume is open
   * on this connection, the range lies in one activity region that is
   * already durably marked (invariant 4) and the pool writes it inline.
   * Returns false, having done nothing, whenever any of that does not hold:
   * the caller then runs execute(), which decides and refuses as usual.
   * Throws (like execute rejects) only when the inline disk write failed.
   * Nothing needs draining at a later raise: the write is done on return.
   */
  tryWriteNow(volumeId: string, generation: number, offset: number, data: Buffer, opened: ReadonlySet<string>): boolean {
    if (failpoints.armed || !opened.has(volumeId) || data.length > this.#options.maxIoBytes) return false;
    const volume = this.#ready.get(volumeId);
    if (volume === undefined || !this.#fence.admitsNow(volumeId, generation)) return false;
    const { store, activity } = volume;
    if (store.writeInline === undefined || offset < 0 || offset + data.length > store.sizeBytes) return false;
    const region = activity.beginWriteNow(offset, data.length);
    if (region === undefined) return false;
    try {
      return store.writeInline(offset, data);
    } finally {
      activity.endWriteInRegion(region);
    }
  }

  /**
   * Issue 8: outside the in-flight set (a REVERT waits for that set to
   * drain). A SNAPSHOT_CREATE first lets every earlier request of the volume
   * settle, like the GET_ACTIVITY barrier: the owner drained its writes, and
   * none of them may land after the snapshot on this replica only.
   */
  async #snapshotOp(request: ReplicaRequest): Promise<Buffer> {
    if (request.opcode === Opcode.SNAPSHOT_CREATE) {
      await this.#settled(request.volumeId, [...this.#inFlightOf(request.volumeId)], 'snapshot asked: waiting for the earlier requests of the volume to settle');
    }
    return this.snapshots.execute(request, async (volumeId) => {
      const open = this.#ready.get(volumeId);
      await this.forget(volumeId);
      await open?.store.close();
    });
  }

  #inFlightOf(volumeId: string): Set<Promise<unknown>> {
    let set = this.#inFlight.get(volumeId);
    if (set === undefined) {
      set = new Set<Promise<unknown>>();
      this.#inFlight.set(volumeId, set);
    }
    return set;
  }

  /**
   * Run `request` once `earlier` settled. A write on the inline path
   * (tryWriteNow) is on disk when it returns, so every write that may still
   * land later is among them: it went through execute().
   */
  async #runAfter(earlier: readonly Promise<unknown>[], request: ReplicaRequest, opened: Set<string>): Promise<Buffer> {
    await this.#settled(request.volumeId, earlier, 'activity asked: waiting for the earlier requests of the volume to settle');
    return this.#run(request, opened, undefined);
  }

  async #settled(volumeId: string, requests: readonly Promise<unknown>[], why: string): Promise<void> {
    if (requests.length === 0) return;
    this.#modules.logger.info({ volumeId, inFlight: requests.length }, why);
    await Promise.allSettled(requests);
  }

  async #run(request: ReplicaRequest, opened: Set<string>, readTarget: Buffer | undefined): Promise<Buffer> {
    if (request.opcode === Opcode.OPEN) {
      const volume = await this.#open(request.volumeId, request.lengthBytes);
      opened.add(request.volumeId);
      return encodeOpenAnswer(volume.store.sizeBytes);
    }
    const volume = opened.has(request.volumeId) ? await this.#volumes.get(request.volumeId) : undefined;
    if (volume === undefined) {
      throw new PlinthError('INVALID_ARGUMENT', `volume ${request.volumeId} was not opened on this connection`, { volumeId: request.volumeId });
    }
    return this.#dispatch(request, volume, readTarget);
  }

  async #dispatch(request: ReplicaRequest, { store, activity }: OpenVolume, readTarget: Buffer | undefined): Promise<Buffer> {
    const { offset, lengthBytes, flags } = request;
    const fua = (flags & RequestFlag.FUA) !== 0;
    switch (request.opcode) {
      case Opcode.READ: {
        this.#assertIoSize(lengthBytes);
        assertInRange(offset, lengthBytes, store.sizeBytes);
        const target = readTarget?.length === lengthBytes ? readTarget : Buffer.allocUnsafe(lengthBytes);
        await store.read(offset, target);
        return target;
      }
      case Opcode.WRITE:
        this.#assertIoSize(lengthBytes);
        return this.#marked(activity, store, offset, lengthBytes, () => store.write(offset, request.payload, { fua }));
      case Opcode.TRIM:
        return this.#marked(activity, store, offset, lengthBytes, () => store.trim(offset, lengthBytes, { fua }));
      case Opcode.WRITE_ZEROES: {
        const noHole = (flags & RequestFlag.NO_HOLE) !== 0;
        const fastZero = (flags & RequestFlag.FAST_ZERO) !== 0;
        return this.#marked(activity, store, offset, lengthBytes, () => store.writeZeroes(offset, lengthBytes, { fua, noHole, fastZero }));
      }
      case Opcode.FLUSH:
        await activity.aroundFlush(() => store.flush());
        if (failpoints.armed) await hitFailpoint('replica.flush.before-ack', request.volumeId);
        return Buffer.alloc(0);
      case Opcode.BLOCK_STATUS: {
        assertInRange(offset, lengthBytes, store.sizeBytes);
        const runs = await store.blockStatus(offset, lengthBytes);
        return encodeStatusRuns(runs.slice(0, MAX_STATUS_RUNS));
      }
      case Opcode.GET_ACTIVITY:
        this.#assertRegionRange(offset, lengthBytes, store, activity);
        return encodeRegionList(this.#withUncleanFlag(request.volumeId, activity.activity(offset, lengthBytes)));
      case Opcode.MARK_REPAIRED:
        await this.#markRepaired(request.volumeId);
        return Buffer.alloc(0);
      case Opcode.GET_DIRTY: {
        this.#assertRegionRange(offset, lengthBytes, store, activity);
        const marker = decodeDirtyMarker(request.payload);
        if (marker instanceof ReplicaProtocolError) throw marker;
        return encodeRegionList(await activity.dirtySince(marker, offset, lengthBytes));
      }
      default:
        throw new PlinthError('INVALID_ARGUMENT', `opcode ${request.opcode} is not a data request`);
    }
  }

  async #marked(activity: VolumeActivity, store: VolumeStore, offset: number, lengthBytes: number, run: () => Promise<void>): Promise<Buffer> {
    assertInRange(offset, lengthBytes, store.sizeBytes);
    const ticket = await activity.beginWrite(offset, lengthBytes);
    try {
      await run();
    } finally {
      activity.endWrite(ticket);
    }
    if (failpoints.armed) await hitFailpoint('replica.write.before-ack', store.volumeId);
    return Buffer.alloc(0);
  }

  #assertIoSize(lengthBytes: number): void {
    if (lengthBytes > this.#options.maxIoBytes) {
      throw new PlinthError('TOO_LARGE', `request of ${lengthBytes} bytes is over the limit of ${this.#options.maxIoBytes}`, {
        lengthBytes,
        maxIoBytes: this.#options.maxIoBytes,
      });
    }
  }

  #assertRegionRange(offset: number, lengthBytes: number, store: VolumeStore, activity: VolumeActivity): void {
    assertInRange(offset, lengthBytes, store.sizeBytes);
    if (lengthBytes / activity.regionSizeBytes > MAX_REGIONS_PER_REPLY) {
      throw new PlinthError('TOO_LARGE', `ask for at most ${MAX_REGIONS_PER_REPLY} regions at once`, { lengthBytes });
    }
  }

  #open(volumeId: string, sizeBytes: number): Promise<OpenVolume> {
    let opening = this.#volumes.get(volumeId);
    if (opening === undefined) {
      opening = this.#openOnce(volumeId, sizeBytes);
      this.#volumes.set(volumeId, opening);
      opening.catch(() => this.#volumes.delete(volumeId)); // the OPEN's caller gets and logs the error
    }
    return opening;
  }

  async #openOnce(volumeId: string, sizeBytes: number): Promise<OpenVolume> {
    const store = await this.#modules.pool.openVolume(volumeId, sizeBytes);
    const activity = await VolumeActivity.load(volumeId, this.#options.regionSizeBytes ?? ACTIVITY_REGION_BYTES, this.#modules);
    const unclean = (await this.#modules.db.get(uncleanKey(volumeId))) !== undefined;
    if (unclean) this.#unclean.add(volumeId);
    else this.#unclean.delete(volumeId);
    this.#modules.logger.info({ volumeId, sizeBytes: store.sizeBytes, unclean }, 'replica volume opened');
    const volume = { store, activity };
    this.#ready.set(volumeId, volume);
    return volume;
  }

  /** Local API for the controller on this node: regions changed since a marker (delta resync). */
  async dirtyRegions(volumeId: string, markerSeq: number, offset: number, lengthBytes: number): Promise<RegionList> {
    const volume = await this.#requireOpen(volumeId);
    this.#assertRegionRange(offset, lengthBytes, volume.store, volume.activity);
    return volume.activity.dirtySince(markerSeq, offset, lengthBytes);
  }

  /** Local API: regions of the activity log (failover resync); a barrier like GET_ACTIVITY. */
  async activeRegions(volumeId: string, offset: number, lengthBytes: number): Promise<RegionList> {
    const volume = await this.#requireOpen(volumeId);
    await this.#settled(volumeId, [...this.#inFlightOf(volumeId)], 'activity asked: waiting for the earlier requests of the volume to settle');
    this.#assertRegionRange(offset, lengthBytes, volume.store, volume.activity);
    return this.#withUncleanFlag(volumeId, volume.activity.activity(offset, lengthBytes));
  }

  /** True while the volume's replica here may lack writes it acknowledged (an open volume; see recordUncleanStart). */
  isUnclean(volumeId: string): boolean {
    return this.#unclean.has(volumeId);
  }

  /**
   * At a start after an unclean end (daemon/lifecycle/run-marker.ts), before
   * serving: flag every volume that has a generation here. That is every
   * volume that may have acknowledged a write (admit() persists a raised
   * generation before the first request of it runs); a volume first opened
   * later in this run lost nothing and stays unflagged. Idempotent: a crash
   * half-way leaves the run marker, so the next start flags them again.
   */
  async recordUncleanStart(): Promise<readonly string[]> {
    const volumeIds: string[] = [];
    for await (const [key] of this.#modules.db.iterator({ gte: GENERATION_KEY_PREFIX, lt: `${GENERATION_KEY_PREFIX}\xff` })) {
      volumeIds.push(key.slice(GENERATION_KEY_PREFIX.length));
    }
    for (let first = 0; first < volumeIds.length; first += MAX_FLAGS_PER_BATCH) {
      const batch = volumeIds.slice(first, first + MAX_FLAGS_PER_BATCH).map((volumeId) => ({ type: 'put' as const, key: uncleanKey(volumeId), value: UNCLEAN_VALUE }));
      await this.#modules.db.batch(batch, SYNC_WRITE);
    }
    for (const volumeId of volumeIds) if (this.#ready.has(volumeId)) this.#unclean.add(volumeId);
    this.#modules.logger.warn({ volumes: volumeIds.length }, 'unclean start: every volume held here may lack writes it acknowledged until its owner repairs it');
    return volumeIds;
  }

  /** MARK_REPAIRED: durably forget the flag, then stop saying it. */
  async #markRepaired(volumeId: string): Promise<void> {
    if (!this.#unclean.has(volumeId)) return;
    await this.#modules.db.batch([{ type: 'del', key: uncleanKey(volumeId) }], SYNC_WRITE);
    this.#unclean.delete(volumeId);
    this.#modules.logger.info({ volumeId }, 'replica made identical to a good source: no longer flagged unclean');
  }

  #withUncleanFlag(volumeId: string, list: RegionList): RegionList {
    return this.#unclean.has(volumeId) ? { ...list, uncleanRestart: true } : list;
  }

  async #requireOpen(volumeId: string): Promise<OpenVolume> {
    const volume = await this.#volumes.get(volumeId);
    if (volume === undefined) throw new PlinthError('INVALID_ARGUMENT', `volume ${volumeId} is not open on this replica`, { volumeId });
    return volume;
  }

  /**
   * Drop one volume this node no longer holds (deleted, or its replica moved
   * away) once its requests in flight are done: the caller then frees its
   * space, and a later OPEN (the replica placed here again) starts from a
   * fresh store instead of a closed one.
   */
  async forget(volumeId: string): Promise<void> {
    const inFlight = this.#inFlight.get(volumeId);
    if (inFlight !== undefined) await Promise.allSettled([...inFlight]);
    this.#volumes.delete(volumeId);
    this.#ready.delete(volumeId);
    this.#unclean.delete(volumeId);
    await this.snapshots.closeVolume(volumeId);
  }

  /**
   * Forget the volumes. The stores stay open: the Pool hands out one shared
   * instance per volume (the local controller may use it too) and the daemon
   * closes the Pool, which flushes them.
   */
  close(): void {
    this.#volumes.clear();
    this.#ready.clear();
    this.#unclean.clear();
  }

  async #drain(volumeId: string): Promise<void> {
    const set = this.#inFlight.get(volumeId);
    if (set !== undefined) await this.#settled(volumeId, [...set], 'generation raised: draining requests of the older generation');
  }
}
