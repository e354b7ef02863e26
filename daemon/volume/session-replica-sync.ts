import type { Logger } from 'pino';
import { PeriodicPass } from '../lifecycle/periodic-pass.js';
import { toError } from '../../common/plinth-error.js';
import type { DataPlaneCluster } from './data-plane-cluster.js';
import type { VolumeSession } from './volume-session.js';

/**
 * The owner's sessions follow the committed replica set (issue 4 "Drain" and
 * data locality): a replica.add or replica.remove committed by the leader's
 * drain or locality reconciler reaches the session serving the volume here.
 *   - added: the session opens the replica (it joins faulted) and the rebuild
 *     reconciler copies it in full before committing it in-sync (invariant 4);
 *   - removed: the session stops writing to it. The removal was committed
 *     first, so a failover never counts on a copy this session stopped feeding.
 * Both steps are idempotent, so the grace-period replacement (which does the
 * same for its own moves) and this pass may race harmlessly.
 */

export interface SessionReplicaSyncOptions {
  readonly nodeId: string;
  readonly intervalMs?: number;
}

export interface SessionReplicaSyncModules {
  readonly sessions: () => readonly VolumeSession[];
  readonly cluster: DataPlaneCluster;
  readonly logger: Logger;
  readonly setInterval?: (callback: () => void, ms: number) => NodeJS.Timeout;
  readonly clearInterval?: (timer: NodeJS.Timeout) => void;
}

export class SessionReplicaSync {
  readonly #options: SessionReplicaSyncOptions;
  readonly #modules: SessionReplicaSyncModules;
  readonly #logger: Logger;
  readonly #loop: PeriodicPass;

  constructor(options: SessionReplicaSyncOptions, modules: SessionReplicaSyncModules) {
    this.#options = options;
    this.#modules = modules;
    this.#logger = modules.logger.child({ component: 'session-replica-sync' });
    this.#loop = new PeriodicPass(options.intervalMs ?? 500, () => this.#pass(), modules);
  }

  start(): void {
    this.#loop.start();
  }

  /** One pass over every live session here; passes never overlap. */
  tick(): Promise<void> {
    return this.#loop.run();
  }

  close(): Promise<void> {
    return this.#loop.close();
  }

  async #pass(): Promise<void> {
    for (const session of this.#modules.sessions()) {
      if (session.stopped) continue;
      const placement = this.#modules.cluster.volume(session.name);
      // Only the session of the committed owner and generation follows the set; a stale one is replaced on the next attach.
      if (placement === undefined || placement.ownerNodeId !== this.#options.nodeId || placement.generation !== session.generation) continue;
      const committed = new Set(placement.replicas.map((replica) => replica.nodeId));
      const served = new Set(session.replicaStatuses().map((status) => status.nodeId));
      for (const nodeId of committed) {
        if (served.has(nodeId)) continue;
        await session.addReplica(nodeId).catch((error: unknown) => {
          this.#logger.warn({ err: toError(error), volume: session.name, replica: nodeId }, 'could not open a newly committed replica; retrying');
        });
      }
      for (const nodeId of served) {
        if (committed.has(nodeId)) continue;
        try {
          session.removeReplica(nodeId);
        } catch (error) {
          this.#logger.error({ err: toError(error), volume: session.name, replica: nodeId }, 'could not stop serving a removed replica');
        }
      }
    }
  }
}
