import type { Logger } from 'pino';
import { PeriodicPass } from '../lifecycle/periodic-pass.js';
import { isPlinthError, toError } from '../../common/plinth-error.js';
import type { ClusterState } from '../state/cluster-state.js';

/**
 * The draining node's own half of `node drain` (issue 4 "Drain": "moves
 * owners ... away"): only this node knows whether a volume attached here has
 * connected clients. Every pass, each volume attached here while the node is
 * draining is detached if idle (a committed volume.detach under the exports'
 * release, so no client can slip in meanwhile). One with clients stays: we
 * cannot move a TCP client, so the drain reports it as blocking until the
 * operator re-attaches it elsewhere (`volume attach NAME --node OTHER --force`).
 */

export interface DrainAttachmentsOptions {
  readonly nodeId: string;
  readonly intervalMs?: number;
}

export interface DrainAttachmentsModules {
  readonly state: () => ClusterState;
  /**
   * Detach the volume unless clients are connected (VOLUME_ATTACHED then):
   * `exports.withVolumeReleased(name, {}, () => commands.propose({ type: 'volume.detach', name }))`.
   */
  readonly detachIfIdle: (name: string) => Promise<unknown>;
  readonly logger: Logger;
  readonly setInterval?: (callback: () => void, ms: number) => NodeJS.Timeout;
  readonly clearInterval?: (timer: NodeJS.Timeout) => void;
}

export class DrainAttachments {
  readonly #options: DrainAttachmentsOptions;
  readonly #modules: DrainAttachmentsModules;
  readonly #logger: Logger;
  /** Volumes kept by clients, so the warning is logged once per volume, not every pass. */
  readonly #held = new Set<string>();
  readonly #loop: PeriodicPass;

  constructor(options: DrainAttachmentsOptions, modules: DrainAttachmentsModules) {
    this.#options = options;
    this.#modules = modules;
    this.#logger = modules.logger.child({ component: 'drain-attachments' });
    this.#loop = new PeriodicPass(options.intervalMs ?? 1000, () => this.#pass(), modules);
  }

  start(): void {
    this.#loop.start();
  }

  tick(): Promise<void> {
    return this.#loop.run();
  }

  /** Volumes this node keeps because clients are connected (as of the last pass). */
  heldByClients(): string[] {
    return [...this.#held].sort();
  }

  close(): Promise<void> {
    return this.#loop.close();
  }

  async #pass(): Promise<void> {
    const state = this.#modules.state();
    const self = Object.hasOwn(state.nodes, this.#options.nodeId) ? state.nodes[this.#options.nodeId] : undefined;
    const attached = Object.values(state.volumes).filter((volume) => volume.attachedTo === this.#options.nodeId).map((volume) => volume.name);
    for (const name of [...this.#held]) if (!attached.includes(name)) this.#held.delete(name);
    if (self?.drainingSince === undefined) {
      this.#held.clear();
      return;
    }
    for (const name of attached) {
      try {
        await this.#modules.detachIfIdle(name);
        this.#held.delete(name);
        this.#logger.info({ volume: name }, 'draining: idle volume detached from this node');
      } catch (error) {
        if (!isPlinthError(error, 'VOLUME_ATTACHED')) {
          this.#logger.error({ err: toError(error), volume: name }, 'draining: detaching an idle volume failed; retrying');
          continue;
        }
        if (!this.#held.has(name)) {
          this.#logger.warn({ volume: name }, `draining: volume ${name} has connected clients and stays attached here; re-attach it elsewhere`);
        }
        this.#held.add(name);
      }
    }
  }
}
