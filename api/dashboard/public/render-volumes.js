// @ts-check
import { badge, el } from './dom.js';
import { formatBytes, percentOf } from './format.js';

/**
 * The volume table: size, health, replica placement with each replica's
 * state and rebuild progress, the owner (attached node), space used
 * (GET /v1/volumes, VolumeView).
 *
 * @typedef {import('./api-client.js').VolumeView} VolumeView
 * @typedef {import('../../../daemon/control-plane.js').ReplicaView} ReplicaView
 */

const COLUMNS = ['Name', 'Size', 'Health', 'Replicas', 'Attached to', 'Used', 'Connections', 'Snapshots'];

/** @param {VolumeView[]} volumes @returns {Node[]} */
export function renderVolumes(volumes) {
  if (volumes.length === 0) return [el('p', { className: 'empty', text: 'No volumes yet: create one below.' })];
  const head = el('thead', {}, [el('tr', {}, COLUMNS.map((column) => el('th', { text: column, attrs: { scope: 'col' } })))]);
  const body = el('tbody', {}, volumes.map(renderVolumeRow));
  return [el('table', { className: 'volumes' }, [head, body])];
}

/** @param {VolumeView} volume */
function renderVolumeRow(volume) {
  const inSync = volume.replicas.filter((replica) => replica.state === 'in-sync').length;
  return el('tr', { attrs: { 'data-volume': volume.name } }, [
    el('th', { attrs: { scope: 'row' } }, [el('code', { text: volume.name })]),
    el('td', { className: 'size', text: formatBytes(volume.sizeBytes) }),
    el('td', {}, [badge(volume.state)]),
    el('td', {}, [
      el('div', { className: 'replica-count', text: `${inSync}/${volume.replicaCount} in sync` }),
      el('ul', { className: 'replicas' }, volume.replicas.map(renderReplica)),
    ]),
    el('td', { className: 'attached', text: volume.attachedTo ?? '—' }),
    el('td', { text: formatBytes(volume.allocatedBytes) }),
    el('td', { text: String(volume.connections) }),
    el('td', { className: 'snapshot-count' }, [
      `${volume.snapshots?.length ?? 0} `,
      el('button', { className: 'secondary small', text: 'Snapshots', attrs: { type: 'button', 'data-show-snapshots': volume.name } }),
    ]),
  ]);
}

/** @param {ReplicaView} replica */
function renderReplica(replica) {
  const item = el('li', { className: 'replica', attrs: { 'data-node-id': replica.nodeId } }, [
    el('span', { className: 'replica-node', text: replica.nodeId }),
    ' ',
    badge(replica.state),
  ]);
  const rebuild = replica.rebuild;
  if (rebuild !== undefined && !rebuild.done) {
    const percent = percentOf(rebuild.copiedBytes, rebuild.totalBytes);
    item.append(
      el('progress', { attrs: { max: String(rebuild.totalBytes), value: String(rebuild.copiedBytes) } }),
      el('span', { className: 'rebuild', text: ` ${percent}% (${formatBytes(rebuild.copiedBytes)} of ${formatBytes(rebuild.totalBytes)})` }),
    );
  }
  return item;
}
