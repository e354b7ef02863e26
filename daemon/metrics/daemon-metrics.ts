import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { Pool } from '../../blockdev/pool/pool-types.js';
import type { ClusterState } from '../state/cluster-state.js';

export interface DaemonMetricsModules {
  readonly pool: Pool;
  /** Read at scrape time, so the gauges never go stale. */
  readonly clusterState: () => ClusterState;
  readonly connectionCount: () => number;
}

/**
 * The node's Prometheus registry: Node's default process metrics with the
 * plinth_ prefix, plus gauges computed at scrape time from the pool and the
 * committed state (no background timers, nothing to stop).
 */
export function createDaemonMetrics(modules: DaemonMetricsModules): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'plinth_' });
  new Gauge({
    name: 'plinth_disk_capacity_bytes',
    help: 'Data capacity of each pool disk on this node',
    labelNames: ['disk', 'path'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const disk of modules.pool.stats().disks) this.set({ disk: disk.id, path: disk.path }, disk.capacityBytes);
    },
  });
  new Gauge({
    name: 'plinth_disk_used_bytes',
    help: 'Bytes of allocated extents on each pool disk on this node',
    labelNames: ['disk', 'path'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const disk of modules.pool.stats().disks) this.set({ disk: disk.id, path: disk.path }, disk.usedBytes);
    },
  });
  new Gauge({
    name: 'plinth_volumes',
    help: 'Volumes in the cluster',
    registers: [registry],
    collect() {
      this.set(Object.keys(modules.clusterState().volumes).length);
    },
  });
  new Gauge({
    name: 'plinth_export_connections',
    help: 'Protocol connections (NBD) to volumes on this node',
    registers: [registry],
    collect() {
      this.set(modules.connectionCount());
    },
  });
  return registry;
}
