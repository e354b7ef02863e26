import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { Pool } from '../../blockdev/pool/pool-types.js';
import type { RebuildProgressView } from '../control-plane.js';
import type { ClusterState, ReplicaState } from '../state/cluster-state.js';

export interface DaemonMetricsModules {
  readonly pool: Pool;
  /** Read at scrape time, so the gauges never go stale. */
  readonly clusterState: () => ClusterState;
  readonly connectionCount: () => number;
  /** Catch-ups this node runs as a volume's owner, by replica node (rebuild-progress.ts). */
  readonly rebuildProgress: (volume: string) => ReadonlyMap<string, RebuildProgressView>;
}

const REPLICA_STATES: readonly ReplicaState[] = ['in-sync', 'rebuilding', 'faulted'];

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
  registerVolumeGauges(registry, modules);
  return registry;
}

/** Replica health and rebuild progress (issue 4: "Progress in volume inspect and metrics"). */
function registerVolumeGauges(registry: Registry, modules: DaemonMetricsModules): void {
  new Gauge({
    name: 'plinth_volume_replicas',
    help: 'Replicas of each volume by state (in-sync, rebuilding, faulted), from the committed cluster state',
    labelNames: ['volume', 'state'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const volume of Object.values(modules.clusterState().volumes)) {
        for (const state of REPLICA_STATES) {
          this.set({ volume: volume.name, state }, volume.replicas.filter((replica) => replica.state === state).length);
        }
      }
    },
  });
  const progressGauge = (name: string, help: string, pick: (progress: RebuildProgressView) => number): void => {
    new Gauge({
      name,
      help,
      labelNames: ['volume', 'replica_node'] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const volume of Object.values(modules.clusterState().volumes)) {
          for (const [nodeId, progress] of modules.rebuildProgress(volume.name)) {
            if (!progress.done) this.set({ volume: volume.name, replica_node: nodeId }, pick(progress));
          }
        }
      },
    });
  };
  progressGauge('plinth_rebuild_copied_bytes', 'Bytes copied so far by each running rebuild this node owns', (progress) => progress.copiedBytes);
  progressGauge('plinth_rebuild_total_bytes', 'Bytes each running rebuild this node owns has to copy', (progress) => progress.totalBytes);
}
