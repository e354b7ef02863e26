import t from 'tap';
import { createDaemonMetrics } from '../../../daemon/metrics/daemon-metrics.js';
import type { RebuildProgressView } from '../../../daemon/control-plane.js';
import { emptyClusterState, type ClusterState, type VolumeRecord } from '../../../daemon/state/cluster-state.js';
import { MemoryPool } from '../../helpers/memory-pool.js';

const AT = '2026-11-26T00:00:00.000Z';

function volume(name: string, states: ReadonlyArray<[string, VolumeRecord['replicas'][number]['state']]>): VolumeRecord {
  return {
    id: `${name}-id`,
    name,
    sizeBytes: 1 << 30,
    replicaCount: states.length,
    createdAt: AT,
    attachedTo: 'n1',
    generation: 3,
    replicas: states.map(([nodeId, state]) => ({ nodeId, state, since: AT })),
    graceMs: 600_000,
  };
}

t.test('replica states and running rebuilds are exported at scrape time', async (t) => {
  let state: ClusterState = {
    ...emptyClusterState(),
    volumes: { db: volume('db', [['n1', 'in-sync'], ['n2', 'in-sync'], ['n3', 'rebuilding']]), logs: volume('logs', [['n1', 'in-sync'], ['n2', 'faulted']]) },
  };
  const progress = new Map<string, Map<string, RebuildProgressView>>([
    ['db', new Map([['n3', { copiedBytes: 1024, totalBytes: 4096, done: false }]])],
    ['logs', new Map([['n2', { copiedBytes: 4096, totalBytes: 4096, done: true }]])],
  ]);
  const registry = createDaemonMetrics({
    pool: new MemoryPool(),
    clusterState: () => state,
    connectionCount: () => 2,
    rebuildProgress: (name) => progress.get(name) ?? new Map(),
  });
  const text = await registry.metrics();
  t.match(text, 'plinth_volume_replicas{volume="db",state="in-sync"} 2');
  t.match(text, 'plinth_volume_replicas{volume="db",state="rebuilding"} 1');
  t.match(text, 'plinth_volume_replicas{volume="logs",state="faulted"} 1');
  t.match(text, 'plinth_rebuild_copied_bytes{volume="db",replica_node="n3"} 1024');
  t.match(text, 'plinth_rebuild_total_bytes{volume="db",replica_node="n3"} 4096');
  t.notMatch(text, 'replica_node="n2"', 'a finished rebuild is not reported as running');
  t.match(text, 'plinth_export_connections 2');

  state = emptyClusterState();
  const after = await registry.metrics();
  t.notMatch(after, 'volume="db"', 'a deleted volume leaves no stale series');
});
