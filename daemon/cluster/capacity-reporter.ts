import type { Logger } from 'pino';
import { toError } from '../../common/plinth-error.js';
import type { PoolStats } from '../../blockdev/pool/pool-types.js';
import { findNode, type ClusterState } from '../state/cluster-state.js';
import type { Command } from '../state/commands.js';

/**
 * Each node reports its pool's capacity through a committed node.capacity
 * (the scheduler weighs placement by free bytes). Bounded rate: at most one
 * report per `everyMs`, and only when the committed numbers drifted by more
 * than `minChangeFraction` of capacity (or were never reported).
 */
export interface CapacityReporterOptions {
  readonly nodeId: string;
  readonly everyMs: number;
  readonly minChangeFraction: number;
}

export interface CapacityReporterModules {
  readonly stats: () => PoolStats;
  readonly state: () => ClusterState;
  readonly propose: (command: Command) => Promise<unknown>;
  readonly logger: Logger;
  readonly clock?: () => Date;
}

export function capacityCommand(options: CapacityReporterOptions, state: ClusterState, stats: PoolStats, at: string): Command | null {
  const node = findNode(state, options.nodeId);
  if (node === undefined) return null;
  const freeBytes = Math.max(0, stats.capacityBytes - stats.usedBytes);
  const drift = Math.abs(node.freeBytes - freeBytes) + Math.abs(node.capacityBytes - stats.capacityBytes);
  const unchanged =
    node.capacityReportedAt !== null && node.diskCount === stats.disks.length && drift <= options.minChangeFraction * stats.capacityBytes;
  if (unchanged) return null;
  return { type: 'node.capacity', nodeId: options.nodeId, capacityBytes: stats.capacityBytes, freeBytes, diskCount: stats.disks.length, at };
}

export class CapacityReporter {
  readonly #options: CapacityReporterOptions;
  readonly #modules: CapacityReporterModules;
  readonly #timer: NodeJS.Timeout;
  #busy = false;

  constructor(options: CapacityReporterOptions, modules: CapacityReporterModules) {
    this.#options = options;
    this.#modules = modules;
    this.#timer = setInterval(() => void this.report(), options.everyMs);
    this.#timer.unref();
  }

  async report(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      const at = (this.#modules.clock ?? (() => new Date()))().toISOString();
      const command = capacityCommand(this.#options, this.#modules.state(), this.#modules.stats(), at);
      if (command !== null) await this.#modules.propose(command);
    } catch (err) {
      this.#modules.logger.warn({ err: toError(err) }, 'capacity: report not committed; retrying later');
    } finally {
      this.#busy = false;
    }
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
