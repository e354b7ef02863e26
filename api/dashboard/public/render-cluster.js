// @ts-check
import { badge, el } from './dom.js';
import { formatBytes, percentOf } from './format.js';

/**
 * The summary strip: cluster id, leader, health, node and volume counts,
 * capacity. The API has no health field (GET /v1/cluster, docs/api.md), so
 * health is derived here from what /v1/nodes and /v1/volumes say.
 *
 * @typedef {import('./api-client.js').ClusterView} ClusterView
 * @typedef {import('./api-client.js').NodeView} NodeView
 * @typedef {import('./api-client.js').VolumeView} VolumeView
 * @typedef {{ cluster: ClusterView, nodes: NodeView[], volumes: VolumeView[] }} ClusterSnapshot
 */

/**
 * @param {ClusterSnapshot} snapshot
 * @returns {{ state: string, reasons: string[] }}
 */
export function clusterHealth({ cluster, nodes, volumes }) {
  const reasons = [];
  if (cluster.leaderId === null) reasons.push('no leader');
  const down = nodes.filter((node) => node.state === 'down').length;
  if (down > 0) reasons.push(`${down} node${down === 1 ? '' : 's'} down`);
  const faulted = volumes.filter((volume) => volume.state === 'faulted').length;
  const degraded = volumes.filter((volume) => volume.state === 'degraded').length;
  if (faulted > 0) reasons.push(`${faulted} volume${faulted === 1 ? '' : 's'} faulted`);
  if (degraded > 0) reasons.push(`${degraded} volume${degraded === 1 ? '' : 's'} degraded`);
  if (reasons.length === 0) return { state: 'healthy', reasons };
  return { state: cluster.leaderId === null || faulted > 0 ? 'faulted' : 'degraded', reasons };
}

/** @param {ClusterSnapshot} snapshot @returns {Node[]} */
export function renderCluster(snapshot) {
  const { cluster, nodes } = snapshot;
  const health = clusterHealth(snapshot);
  const up = nodes.filter((node) => node.state === 'up').length;
  return [
    fact('Cluster', el('code', { text: cluster.clusterId })),
    fact('Leader', cluster.leaderId ?? 'none (election in progress)'),
    fact('Health', badge(health.state), health.reasons.length === 0 ? '' : ` ${health.reasons.join(', ')}`),
    fact('Nodes', `${up} up of ${cluster.nodeCount}`),
    fact('Volumes', String(cluster.volumeCount), receivingNote(snapshot.volumes)),
    fact(
      'Capacity',
      el('meter', { attrs: { min: '0', max: String(cluster.capacityBytes), value: String(cluster.usedBytes), high: String(cluster.capacityBytes * 0.85) } }),
      ` ${formatBytes(cluster.usedBytes)} of ${formatBytes(cluster.capacityBytes)} (${percentOf(cluster.usedBytes, cluster.capacityBytes)}%)`,
    ),
    fact('Version', cluster.version),
  ];
}

/** A volume still being received is neither healthy nor failing: it is said apart. @param {VolumeView[]} volumes */
function receivingNote(volumes) {
  const receiving = volumes.filter((volume) => volume.state === 'receiving').length;
  return receiving === 0 ? '' : ` (${receiving} receiving)`;
}

/** @param {string} label @param {...(Node | string)} value */
function fact(label, ...value) {
  return el('div', { className: 'fact' }, [el('dt', { text: label }), el('dd', {}, value)]);
}
