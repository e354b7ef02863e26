import type { Logger } from 'pino';
import { failpoints, hitFailpoint } from '../../common/failpoints/failpoints.js';
import { CoalescedTask } from './coalesced-task.js';
import type { Disk } from './disk.js';
import type { ExtentAllocator } from './extent-allocator.js';
import { type InFlightExtents, settleAll } from './extent-io.js';
import type { MetadataStore } from './metadata-store.js';

/**
 * The pool-wide flush, in the order that keeps data (ARCHITECTURE
 * invariant 5):
 *
 *   1. take the queued mapping changes and the pending frees (everything
 *      queued so far maps data whose writes have already completed);
 *   2. fdatasync every disk written since its last sync;
 *   3. write the taken mapping batch with sync: a mapping is never durable
 *      before the bytes it points at;
 *   4. only now make the freed extents reusable (if no I/O still holds them):
 *      until the unmapping is durable a crash would resurrect the old mapping.
 *
 * On failure nothing is released and the batch is queued again.
 * Flushes are coalesced (coalesced-task.ts): one in flight, later callers
 * share the next one. When the queue of mapping changes reaches
 * `metadataQueueLimit` entries, a flush is started in the background so the
 * queue (and the pending-free list with it) stays bounded even for clients
 * that never flush.
 */
export interface PoolFlusherOptions {
  readonly disks: readonly Disk[];
  readonly metadataQueueLimit: number;
}

export interface PoolFlusherModules {
  readonly metadata: MetadataStore;
  readonly allocator: ExtentAllocator;
  readonly inFlight: InFlightExtents;
  readonly logger: Logger;
}

export const DEFAULT_METADATA_QUEUE_LIMIT = 4096;

export class PoolFlusher {
  readonly #disks: readonly Disk[];
  readonly #metadataQueueLimit: number;
  readonly #modules: PoolFlusherModules;
  readonly #task = new CoalescedTask(() => this.#flushOnce());

  constructor(options: PoolFlusherOptions, modules: PoolFlusherModules) {
    this.#disks = options.disks;
    this.#metadataQueueLimit = options.metadataQueueLimit;
    this.#modules = modules;
  }

  /** Resolves once every write and mapping change completed before this call is durable. */
  flush(): Promise<void> {
    return this.#task.run();
  }

  /** Called after queueing a mapping change: keep the queue bounded. */
  noteMetadataQueued(): void {
    const { metadata, allocator, logger } = this.#modules;
    const backlog = metadata.queuedCount + allocator.pendingFreeCount;
    if (backlog < this.#metadataQueueLimit || this.#task.busy) {
      return;
    }
    this.flush().catch((err: unknown) => {
      logger.error({ err, backlog }, 'background pool flush failed; the changes stay queued for the next flush');
    });
  }

  async #flushOnce(): Promise<void> {
    const { metadata, allocator, inFlight } = this.#modules;
    const batch = metadata.takeQueued();
    const frees = allocator.takePendingFrees();
    try {
      await settleAll(this.#disks.filter((disk) => disk.dirty).map((disk) => disk.sync()));
      if (failpoints.armed) await hitFailpoint('pool.flush.after-data-sync');
      await metadata.writeBatch(batch);
    } catch (err) {
      metadata.requeue(batch);
      allocator.requeuePendingFrees(frees);
      throw err;
    }
    allocator.release(frees, (location) => inFlight.has(location));
  }
}
