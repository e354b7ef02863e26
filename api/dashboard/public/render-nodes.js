// @ts-check
import { badge, el } from './dom.js';
import { formatBytes, percentOf } from './format.js';

/**
 * One card per node: state, leadership, addresses, failure-domain labels,
 * the pool's capacity bar and each disk with its own (GET /v1/nodes, NodeView).
 *
 * @typedef {import('./api-client.js').NodeView} NodeView
 * @typedef {import('../../../daemon/control-plane.js').DiskView} DiskView
 */

/** @param {NodeView[]} nodes @returns {Node[]} */
export function renderNodes(nodes) {
  if (nodes.length === 0) return [el('p', { className: 'empty', text: 'No nodes yet.' })];
  return nodes.map(renderNode);
}

/** @param {NodeView} node */
function renderNode(node) {
  const badges = [badge(node.state)];
  if (node.leader) badges.push(badge('leader'));
  if (node.drain !== undefined) badges.push(badge(node.drain.done ? 'drained' : `draining: ${node.drain.replicasLeft} replicas left`, 'draining'));
  return el('article', { className: 'node card', attrs: { 'data-node-id': node.id } }, [
    el('header', {}, [el('h3', { text: node.id }), ...badges]),
    el('dl', { className: 'addresses' }, [
      ...pair('API', node.addresses.api),
      ...pair('Peer', node.addresses.peer),
      ...pair('NBD', node.addresses.nbd),
      ...pair('iSCSI', node.addresses.iscsi),
      ...pair('Labels', labelText(node)),
    ]),
    renderPool(node),
    node.disks.length > 0
      ? el('ul', { className: 'disks' }, node.disks.map(renderDisk))
      // Disk details are live facts of the node itself (daemon/control/views.ts); others show its pool summary.
      : el('p', { className: 'disk-note', text: `Per-disk details: open this node's own dashboard (API ${node.addresses.api}).` }),
  ]);
}

/** The node's whole pool: capacity committed to the cluster state, used space. @param {NodeView} node */
function renderPool(node) {
  const percent = percentOf(node.usedBytes, node.capacityBytes);
  return el('div', { className: 'pool' }, [
    el('meter', {
      className: 'pool-meter',
      attrs: { min: '0', max: String(node.capacityBytes), value: String(node.usedBytes), high: String(node.capacityBytes * 0.85), title: `pool ${percent}% used` },
    }),
    el('div', { className: 'disk-usage', text: `pool: ${formatBytes(node.usedBytes)} of ${formatBytes(node.capacityBytes)} used (${percent}%)` }),
  ]);
}

/**
 * Zone and rack labels (`--label zone=z1`) when the API reports them; the
 * NodeView of docs/api.md does not carry them yet, hence the guard.
 * @param {NodeView} node
 */
function labelText(node) {
  const labels = /** @type {{ labels?: { zone?: string, rack?: string } }} */ (node).labels;
  const parts = [];
  if (labels?.zone !== undefined) parts.push(`zone=${labels.zone}`);
  if (labels?.rack !== undefined) parts.push(`rack=${labels.rack}`);
  return parts.length === 0 ? '—' : parts.join(' ');
}

/** @param {DiskView} disk */
function renderDisk(disk) {
  const percent = percentOf(disk.usedBytes, disk.capacityBytes);
  return el('li', { className: 'disk' }, [
    el('div', { className: 'disk-name' }, [el('code', { text: disk.path }), ` ${disk.kind}`]),
    el('meter', {
      attrs: { min: '0', max: String(disk.capacityBytes), value: String(disk.usedBytes), high: String(disk.capacityBytes * 0.85), title: `${percent}% used` },
    }),
    el('div', { className: 'disk-usage', text: `${formatBytes(disk.usedBytes)} of ${formatBytes(disk.capacityBytes)} used (${percent}%)` }),
  ]);
}

/** @param {string} term @param {string} value */
function pair(term, value) {
  return [el('dt', { text: term }), el('dd', { text: value })];
}
