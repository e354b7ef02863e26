import type { Logger } from 'pino';
import { PlinthError, toError } from '../../common/plinth-error.js';
import type { ReplicaService } from '../../blockdev/replica/replica-service.js';
import { KeyedMutex } from '../control/keyed-mutex.js';
import type { DataPlaneCluster } from './data-plane-cluster.js';
import { VolumeSession, type VolumeSessionOptions } from './volume-session.js';

/**
 * The volumes attached to this node, one VolumeSession each. Opening,
 * replacing and closing a volume's session run one at a time per volume, so
 * two clients connecting at once attach once and share the session. A
 * session that stopped (fenced by a newer owner, or suspended) is replaced
 * on the next acquire, which attaches anew.
 */

export interface VolumeSessionsOptions {
  readonly nodeId: string;
  /** Attached volumes served at once (a limit on everything). */
  readonly maxSessions?: number;
  readonly session?: Omit<VolumeSessionOptions, 'name' | 'nodeId' | 'force'>;
}

export interface VolumeSessionsModules {
  readonly cluster: DataPlaneCluster;
  readonly service: ReplicaService;
  readonly secret: Buffer;
  /** Replica links' dialer (VolumeSessionModules.connectPeer). */
  readonly connectPeer?: (host: string, port: number) => import('node:net').Socket;
  readonly logger: Logger;
}

export interface AcquireOptions {
  readonly force?: boolean;
}

export class VolumeSessions {
  readonly #options: VolumeSessionsOptions;
  readonly #modules: VolumeSessionsModules;
  readonly #sessions = new Map<string, VolumeSession>();
  readonly #mutex = new KeyedMutex();
  #closing = false;

  constructor(options: VolumeSessionsOptions, modules: VolumeSessionsModules) {
    this.#options = options;
    this.#modules = modules;
  }

  /** The volume's live session on this node, attaching it here first when needed. */
  acquire(name: string, options: AcquireOptions = {}): Promise<VolumeSession> {
    return this.#mutex.run(name, async () => {
      if (this.#closing) throw new PlinthError('SHUTTING_DOWN', 'plinthd is shutting down');
      const existing = this.#sessions.get(name);
      if (existing !== undefined && !existing.stopped && this.#stillOwner(existing)) return existing;
      if (existing !== undefined) await this.#drop(existing, 'session stopped or ownership moved');
      const limit = this.#options.maxSessions ?? 256;
      if (this.#sessions.size >= limit) {
        throw new PlinthError('BUSY', `this node already serves ${limit} volumes (the limit)`, { limit });
      }
      const session = await VolumeSession.open(
        { ...this.#options.session, name, nodeId: this.#options.nodeId, ...(options.force === undefined ? {} : { force: options.force }) },
        this.#modules,
      );
      this.#sessions.set(name, session);
      return session;
    });
  }

  get(name: string): VolumeSession | undefined {
    return this.#sessions.get(name);
  }

  list(): VolumeSession[] {
    return [...this.#sessions.values()];
  }

  /** Close the volume's session (detach, delete, or hand-over); the caller commits the state change. */
  release(name: string): Promise<void> {
    return this.#mutex.run(name, async () => {
      const session = this.#sessions.get(name);
      if (session !== undefined) await this.#drop(session, 'released');
    });
  }

  async closeAll(): Promise<void> {
    this.#closing = true;
    await Promise.all(this.list().map((session) => this.release(session.name)));
  }

  #stillOwner(session: VolumeSession): boolean {
    const placement = this.#modules.cluster.volume(session.name);
    return placement !== undefined && placement.ownerNodeId === this.#options.nodeId && placement.generation === session.generation;
  }

  async #drop(session: VolumeSession, reason: string): Promise<void> {
    this.#sessions.delete(session.name);
    await session.close().catch((error: unknown) => {
      this.#modules.logger.error({ err: toError(error), volume: session.name }, 'closing a volume session failed');
    });
    this.#modules.logger.info({ volume: session.name, reason }, 'volume session dropped');
  }
}
