import { Registry } from 'prom-client';
import t from 'tap';
import { registerVolumeStateMetrics } from '../../../daemon/metrics/volume-state-metrics.js';
import { emptyClusterState, type ClusterState, type ReplicaState, type VolumeRecord } from '../../../daemon/state/cluster-state.js';

const AT = '2026-11-26T00:00:00.000Z';

function volume(name: string, states: readonly ReplicaState[]): VolumeRecord {
  return {
    id: `${name}-id`,
    name,
    sizeBytes: 1 << 30,
    replicaCount: states.length,
    createdAt: AT,
    attachedTo: null,
    generation: 1,
    replicas: states.map((state, index) => ({ nodeId: `n${index + 1}`, state, since: AT })),
    graceMs: 600_000,
  };
}

t.test('each volume reports exactly one of healthy, degraded, faulted, and follows the state', async (t) => {
  let state: ClusterState = {
    ...emptyClusterState(),
    volumes: {
      ok: volume('ok', ['in-sync', 'in-sync']),
      half: volume('half', ['in-sync', 'rebuilding']),
      lost: volume('lost', ['faulted', 'faulted']),
    },
  };
  const registry = new Registry();
  registerVolumeStateMetrics(registry, { clusterState: () => state, rebuildProgress: () => new Map() });
  const text = await registry.metrics();
  t.match(text, 'plinth_volume_state{volume="ok",state="healthy"} 1');
  t.match(text, 'plinth_volume_state{volume="ok",state="degraded"} 0');
  t.match(text, 'plinth_volume_state{volume="half",state="degraded"} 1');
  t.match(text, 'plinth_volume_state{volume="lost",state="faulted"} 1');
  t.match(text, 'plinth_volume_state{volume="lost",state="healthy"} 0');

  state = { ...state, volumes: { half: volume('half', ['in-sync', 'in-sync']) } };
  const after = await registry.metrics();
  t.match(after, 'plinth_volume_state{volume="half",state="healthy"} 1', 'a finished rebuild makes it healthy');
  t.notMatch(after, 'volume="ok"', 'deleted volumes leave no series');
  t.notMatch(after, 'volume="lost"');
});
