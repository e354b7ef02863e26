import { Gauge, type Registry } from 'prom-client';
import type { RebuildProgressView } from '../control-plane.js';
import { volumeHealth } from '../control/views.js';
import type { ClusterState, ReplicaState } from '../state/cluster-state.js';

export interface VolumeStateMetricsModules {
  /** Read at scrape time, so the gauges never go stale and deleted volumes vanish. */
  readonly clusterState: () => ClusterState;
  /** Catch-ups this node runs as a volume's owner, by replica node (rebuild-progress.ts). */
  readonly rebuildProgress: (volume: string) => ReadonlyMap<string, RebuildProgressView>;
}

const REPLICA_STATES: readonly ReplicaState[] = ['in-sync', 'rebuilding', 'faulted'];
/** The API's volume states (views.ts volumeHealth). */
const VOLUME_STATES = ['healthy', 'degraded', 'faulted', 'receiving'] as const;

/**
 * Volume health from the committed cluster state, the same on every node,
 * plus the rebuilds this node runs as owner (issue 4: "Progress in volume
 * inspect and metrics"; issue 6 "state and replica states; rebuild progress").
 */
export function registerVolumeStateMetrics(registry: Registry, modules: VolumeStateMetricsModules): void {
  new Gauge({
    name: 'plinth_volume_state',
    help: 'Volume health: 1 for the state the volume is in (healthy, degraded, faulted, receiving), 0 for the others',
    labelNames: ['volume', 'state'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const volume of Object.values(modules.clusterState().volumes)) {
        const health = volumeHealth(volume);
        for (const state of VOLUME_STATES) this.set({ volume: volume.name, state }, state === health ? 1 : 0);
      }
    },
  });
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
