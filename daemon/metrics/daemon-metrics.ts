import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { Pool } from '../../blockdev/pool/pool-types.js';
import type { RebuildProgressView } from '../control-plane.js';
import { findVolume, type ClusterState } from '../state/cluster-state.js';
import { registerRaftMetrics, type RaftMetricsSource } from './raft-metrics.js';
import { registerVolumeIoMetrics } from './volume-io-metrics.js';
import type { VolumeIoRecorder } from './volume-io-stats.js';
import { registerVolumeStateMetrics } from './volume-state-metrics.js';

export interface DaemonMetricsModules {
  readonly pool: Pool;
  /** Read at scrape time, so the gauges never go stale. */
  readonly clusterState: () => ClusterState;
  readonly connectionCount: () => number;
  /** Catch-ups this node runs as a volume's owner, by replica node (rebuild-progress.ts). */
  readonly rebuildProgress: (volume: string) => ReadonlyMap<string, RebuildProgressView>;
  /** The data-path counters the exports' metered devices fill (metered-device.ts); absent: no volume I/O series. */
  readonly volumeIo?: VolumeIoRecorder;
  /** This node's Raft; absent: no plinth_raft_* series. */
  readonly raft?: RaftMetricsSource;
}

/**
 * The node's Prometheus registry: Node's default process metrics with the
 * plinth_ prefix, plus series computed at scrape time from the pool, the
 * committed state, the volume I/O counters and Raft's status (no background
 * timers, nothing to stop). docs/operations.md "Metrics" lists them all;
 * docs/grafana/plinth-dashboard.json is built on them.
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
    help: 'Protocol connections (NBD and iSCSI) to volumes on this node',
    registers: [registry],
    collect() {
      this.set(modules.connectionCount());
    },
  });
  registerVolumeStateMetrics(registry, modules);
  const volumeExists = (name: string): boolean => findVolume(modules.clusterState(), name) !== undefined;
  if (modules.volumeIo !== undefined) registerVolumeIoMetrics(registry, { recorder: modules.volumeIo, volumeExists });
  if (modules.raft !== undefined) registerRaftMetrics(registry, modules.raft);
  return registry;
}
