import type { Logger } from 'pino';
import { toError } from '../../common/plinth-error.js';
import type { ClusterState, NodeLiveness } from '../state/cluster-state.js';
import type { Command } from '../state/commands.js';

/**
 * Node liveness from Raft heartbeats (issue 4 "liveness from heartbeats"):
 * on the leader, a follower not heard from for `downAfterMs` is committed
 * `node.down`, and `node.up` once it answers again. The decision is pure
 * (decideLiveness); the monitor is the thin timer shell around it.
 */
export interface LivenessInputs {
  readonly state: ClusterState;
  readonly selfId: string;
  readonly nowMs: number;
  /** When this node became leader: nobody is judged on silence from before. */
  readonly leaderSinceMs: number;
  readonly lastContactMs: (nodeId: string) => number | undefined;
  readonly downAfterMs: number;
}

export interface LivenessChange {
  readonly nodeId: string;
  readonly state: NodeLiveness;
}

export function decideLiveness(inputs: LivenessInputs): LivenessChange[] {
  const changes: LivenessChange[] = [];
  for (const node of Object.values(inputs.state.nodes)) {
    if (node.id === inputs.selfId) {
      // The leader hears itself: a leader once marked down is back.
      if (node.state === 'down') changes.push({ nodeId: node.id, state: 'up' });
      continue;
    }
    const contactMs = inputs.lastContactMs(node.id);
    // Silence counts only from when this node began to lead (a new leader has heard nobody yet).
    const silentMs = inputs.nowMs - Math.max(contactMs ?? 0, inputs.leaderSinceMs);
    const heardRecently = contactMs !== undefined && inputs.nowMs - contactMs <= inputs.downAfterMs;
    if (node.state === 'up' && silentMs > inputs.downAfterMs) changes.push({ nodeId: node.id, state: 'down' });
    if (node.state === 'down' && heardRecently) changes.push({ nodeId: node.id, state: 'up' });
  }
  return changes.sort((a, b) => a.nodeId.localeCompare(b.nodeId));
}

export interface LivenessMonitorOptions {
  readonly selfId: string;
  readonly downAfterMs: number;
  readonly checkEveryMs: number;
}

export interface LivenessMonitorModules {
  readonly isLeader: () => boolean;
  readonly state: () => ClusterState;
  readonly lastContactMs: (nodeId: string) => number | undefined;
  readonly propose: (command: Command) => Promise<unknown>;
  readonly logger: Logger;
  readonly nowMs?: () => number;
}

export class LivenessMonitor {
  readonly #options: LivenessMonitorOptions;
  readonly #modules: LivenessMonitorModules;
  readonly #timer: NodeJS.Timeout;
  #leaderSinceMs: number | null = null;
  #busy = false;

  constructor(options: LivenessMonitorOptions, modules: LivenessMonitorModules) {
    this.#options = options;
    this.#modules = modules;
    this.#timer = setInterval(() => void this.check(), options.checkEveryMs);
    this.#timer.unref();
  }

  /** One pass; proposals run one at a time, and a pass never overlaps the previous one. */
  async check(): Promise<void> {
    const nowMs = (this.#modules.nowMs ?? Date.now)();
    if (!this.#modules.isLeader()) {
      this.#leaderSinceMs = null;
      return;
    }
    this.#leaderSinceMs ??= nowMs;
    if (this.#busy) return;
    this.#busy = true;
    try {
      const changes = decideLiveness({
        state: this.#modules.state(),
        selfId: this.#options.selfId,
        nowMs,
        leaderSinceMs: this.#leaderSinceMs,
        lastContactMs: this.#modules.lastContactMs,
        downAfterMs: this.#options.downAfterMs,
      });
      for (const change of changes) {
        const at = new Date(nowMs).toISOString();
        await this.#modules.propose({ type: change.state === 'down' ? 'node.down' : 'node.up', nodeId: change.nodeId, at });
        this.#modules.logger.warn({ node: change.nodeId, state: change.state }, `node ${change.nodeId} is ${change.state}`);
      }
    } catch (err) {
      this.#modules.logger.warn({ err: toError(err) }, 'liveness: could not commit a node state change; retrying next pass');
    } finally {
      this.#busy = false;
    }
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
