import { PlinthError, toError } from '../../common/plinth-error.js';
import type { BlockCapabilities, BlockDevice, BlockSizeHints, ExtentStatus, TrimOptions, WriteOptions, ZeroOptions } from '../../blockdev/block-device.js';
import { assertInRange } from '../../blockdev/range.js';
import { decodeRegionList, decodeStatusRuns, type RegionList } from '../../blockdev/replica/replica-payloads.js';
import { Opcode, type ReplicaRequest, ReplicaProtocolError, RequestFlag } from '../../blockdev/replica/replica-protocol.js';
import { REMOTE_REPLICA_CAPABILITIES } from '../../blockdev/replica/remote-replica.js';
import type { ReplicaService } from '../../blockdev/replica/replica-service.js';

/**
 * This node's replica of a volume, as a BlockDevice for the controller on
 * this node. It does not write the pool's VolumeStore directly: every
 * request runs through the node's ReplicaService in-process, exactly as a
 * request from the peer port would, so that
 *   - the generation fence applies (invariant 3): a frozen former owner
 *     that wakes up cannot write into its own local replica either, since
 *     the new owner raised the fence there;
 *   - every write is marked in the activity log first (invariant 4), so a
 *     failover and a delta resync see local writes like remote ones.
 */

export interface LocalReplicaOptions {
  readonly volumeId: string;
  readonly sizeBytes: number;
  readonly generation: number;
}

export interface LocalReplicaModules {
  readonly service: ReplicaService;
}

/** Stands in for a connection id: requests of this device count as "opened" in the service. */
const NO_REQUEST_ID = 0;

export class LocalReplica implements BlockDevice {
  readonly sizeBytes: number;
  readonly capabilities: BlockCapabilities = REMOTE_REPLICA_CAPABILITIES;
  readonly blockSize: BlockSizeHints;
  readonly #options: LocalReplicaOptions;
  readonly #service: ReplicaService;
  /** The service's per-connection record of OPENed volumes. */
  readonly #opened = new Set<string>();

  private constructor(options: LocalReplicaOptions, modules: LocalReplicaModules) {
    this.#options = options;
    this.#service = modules.service;
    this.sizeBytes = options.sizeBytes;
    this.blockSize = { minimumBytes: 1, preferredBytes: 4096, maximumBytes: modules.service.maxIoBytes };
  }

  /** OPEN with the session's generation: raises the fence (draining older requests) or throws FENCED. */
  static async open(options: LocalReplicaOptions, modules: LocalReplicaModules): Promise<LocalReplica> {
    const replica = new LocalReplica(options, modules);
    await replica.#execute(Opcode.OPEN, 0, 0, options.sizeBytes);
    return replica;
  }

  async read(offset: number, target: Buffer): Promise<void> {
    assertInRange(offset, target.length, this.sizeBytes);
    // The service reads straight into `target` (no copy of a 4 MiB catch-up chunk).
    const data = await this.#execute(Opcode.READ, 0, offset, target.length, undefined, target);
    if (data !== target) data.copy(target);
  }

  write(offset: number, data: Buffer, options?: WriteOptions): Promise<void> {
    // Same checks and marks as execute(), without its promise layers when nothing has to wait.
    try {
      if (options?.fua !== true && this.#service.tryWriteNow(this.#options.volumeId, this.#options.generation, offset, data, this.#opened)) return Promise.resolve();
    } catch (err) {
      return Promise.reject(toError(err));
    }
    return this.#executeVoid(Opcode.WRITE, options?.fua === true ? RequestFlag.FUA : 0, offset, data.length, data);
  }

  async #executeVoid(opcode: Opcode, flags: number, offset: number, lengthBytes: number, payload: Buffer): Promise<void> {
    await this.#execute(opcode, flags, offset, lengthBytes, payload);
  }

  async flush(): Promise<void> {
    await this.#execute(Opcode.FLUSH, 0, 0, 0);
  }

  async trim(offset: number, lengthBytes: number, options?: TrimOptions): Promise<void> {
    await this.#execute(Opcode.TRIM, options?.fua === true ? RequestFlag.FUA : 0, offset, lengthBytes);
  }

  async writeZeroes(offset: number, lengthBytes: number, options?: ZeroOptions): Promise<void> {
    const flags =
      (options?.fua === true ? RequestFlag.FUA : 0) |
      (options?.noHole === true ? RequestFlag.NO_HOLE : 0) |
      (options?.fastZero === true ? RequestFlag.FAST_ZERO : 0);
    await this.#execute(Opcode.WRITE_ZEROES, flags, offset, lengthBytes);
  }

  async blockStatus(offset: number, lengthBytes: number): Promise<ExtentStatus[]> {
    return decoded(decodeStatusRuns(await this.#execute(Opcode.BLOCK_STATUS, 0, offset, lengthBytes)));
  }

  /** The activity log over [offset, +lengthBytes) (failover resync, invariant 4). */
  async getActivity(offset: number, lengthBytes: number): Promise<RegionList> {
    return decoded(decodeRegionList(await this.#execute(Opcode.GET_ACTIVITY, 0, offset, lengthBytes)));
  }

  /** MARK_REPAIRED (issue 7): made identical to a good source; the unclean flag clears durably. */
  async markRepaired(): Promise<void> {
    await this.#execute(Opcode.MARK_REPAIRED, 0, 0, 0);
  }

  #execute(opcode: Opcode, flags: number, offset: number, lengthBytes: number, payload: Buffer = Buffer.alloc(0), readTarget?: Buffer): Promise<Buffer> {
    const request: ReplicaRequest = {
      opcode,
      flags,
      requestId: NO_REQUEST_ID,
      generation: this.#options.generation,
      offset,
      lengthBytes,
      volumeId: this.#options.volumeId,
      payload,
    };
    return this.#service.execute(request, this.#opened, readTarget);
  }
}

function decoded<T>(value: T | ReplicaProtocolError): T {
  if (value instanceof ReplicaProtocolError) {
    throw new PlinthError('INTERNAL', `local replica answer is malformed: ${value.message}`, { reason: value.reason }, { cause: value });
  }
  return value;
}
