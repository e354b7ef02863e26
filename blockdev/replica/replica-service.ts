import type { Logger } from 'pino';
import { PlinthError } from '../../common/plinth-error.js';
import { failpoints, hitFailpoint } from '../../common/failpoints/failpoints.js';
import type { Pool, VolumeStore } from '../pool/pool-types.js';
import { assertInRange } from '../range.js';
import { ACTIVITY_REGION_BYTES, VolumeActivity } from './activity-log.js';
import { GenerationFence } from './generation-fence.js';
import type { ReplicaDatabase } from './replica-database.js';
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

/**
 * The node-wide half of the replica server: the Pool's volume stores, the
 * generation fence and the activity logs, shared by every connection.
 * `execute` runs one authenticated request and returns the reply payload or
 * throws a PlinthError that the connection maps to a status.
 *
 * Order per request: fence (invariant 3), then range checks, then the
 * activity mark (invariant 4), then the store.
 */

export interface ReplicaServiceOptions {
  readonly maxIoBytes: number;
  readonly regionSizeBytes?: number;
  /** This node's previous run ended uncleanly (daemon/lifecycle/run-marker.ts); said in every activity answer. */
  readonly uncleanRestart?: boolean;
}

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
  /** Requests past the fence, per volume: a generation raise waits for them (no older write lands after it). */
  readonly #inFlight = new Map<string, Set<Promise<unknown>>>();

  constructor(options: ReplicaServiceOptions, modules: ReplicaServiceModules) {
    this.#options = options;
    this.#modules = modules;
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
    const work = this.#run(request, opened, readTarget);
    const set = this.#inFlight.get(request.volumeId) ?? new Set<Promise<unknown>>();
    this.#inFlight.set(request.volumeId, set);
    set.add(work);
    try {
      return await work;
    } finally {
      set.delete(work);
    }
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
        return encodeRegionList(this.#withRestartFlag(activity.activity(offset, lengthBytes)));
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
    this.#modules.logger.info({ volumeId, sizeBytes: store.sizeBytes }, 'replica volume opened');
    return { store, activity };
  }

  /** Local API for the controller on this node: regions changed since a marker (delta resync). */
  async dirtyRegions(volumeId: string, markerSeq: number, offset: number, lengthBytes: number): Promise<RegionList> {
    const volume = await this.#requireOpen(volumeId);
    this.#assertRegionRange(offset, lengthBytes, volume.store, volume.activity);
    return volume.activity.dirtySince(markerSeq, offset, lengthBytes);
  }

  /** Local API: regions of the activity log (failover resync). */
  async activeRegions(volumeId: string, offset: number, lengthBytes: number): Promise<RegionList> {
    const volume = await this.#requireOpen(volumeId);
    this.#assertRegionRange(offset, lengthBytes, volume.store, volume.activity);
    return this.#withRestartFlag(volume.activity.activity(offset, lengthBytes));
  }

  #withRestartFlag(list: RegionList): RegionList {
    return this.#options.uncleanRestart === true ? { ...list, uncleanRestart: true } : list;
  }

  async #requireOpen(volumeId: string): Promise<OpenVolume> {
    const volume = await this.#volumes.get(volumeId);
    if (volume === undefined) throw new PlinthError('INVALID_ARGUMENT', `volume ${volumeId} is not open on this replica`, { volumeId });
    return volume;
  }

  /**
   * Forget the volumes. The stores stay open: the Pool hands out one shared
   * instance per volume (the local controller may use it too) and the daemon
   * closes the Pool, which flushes them.
   */
  close(): void {
    this.#volumes.clear();
  }

  async #drain(volumeId: string): Promise<void> {
    const set = this.#inFlight.get(volumeId);
    if (set !== undefined && set.size > 0) {
      this.#modules.logger.info({ volumeId, inFlight: set.size }, 'generation raised: draining requests of the older generation');
      await Promise.allSettled([...set]);
    }
  }
}
