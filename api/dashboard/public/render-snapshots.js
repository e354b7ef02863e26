// @ts-check
import { el } from './dom.js';
import { formatBytes, formatDuration } from './format.js';

/**
 * The selected volume's snapshots (GET /v1/volumes/{name}/snapshots, issue 8,
 * docs/snapshots.md) and its retention schedule. Space is measured by the
 * answering node only when its pool holds the snapshot, so exclusive/shared
 * bytes are "—" otherwise rather than a guess.
 *
 * @typedef {import('./api-client.js').SnapshotView} SnapshotView
 * @typedef {import('./api-client.js').SnapshotSchedule} SnapshotSchedule
 * @typedef {{ volume: string, snapshots: SnapshotView[], schedule: SnapshotSchedule | null | undefined, error?: string }} SnapshotListing
 */

const COLUMNS = ['Name', 'Created', 'Size', 'Holders', 'Exclusive', 'Shared', 'Group'];

/** @param {SnapshotListing} listing @returns {Node[]} */
export function renderSnapshots(listing) {
  if (listing.error !== undefined) return [el('p', { className: 'error', text: `Could not list snapshots of ${listing.volume}: ${listing.error}` })];
  const schedule = el('p', { className: 'schedule muted', text: describeSchedule(listing.schedule) });
  if (listing.snapshots.length === 0) return [schedule, el('p', { className: 'empty', text: `${listing.volume} has no snapshots yet.` })];
  const head = el('thead', {}, [el('tr', {}, COLUMNS.map((column) => el('th', { text: column, attrs: { scope: 'col' } })))]);
  const body = el('tbody', {}, listing.snapshots.map(renderSnapshotRow));
  return [schedule, el('table', { className: 'volumes snapshots' }, [head, body])];
}

/** @param {SnapshotSchedule | null | undefined} schedule undefined: the daemon does not serve schedules */
export function describeSchedule(schedule) {
  if (schedule === undefined) return 'Retention schedule: unknown';
  if (schedule === null) return 'Retention schedule: none';
  return `Retention schedule: a snapshot every ${formatDuration(schedule.everyMs)}, keeping the newest ${schedule.keep}`;
}

/** @param {SnapshotView} snapshot */
function renderSnapshotRow(snapshot) {
  const space = snapshot.space;
  const spaceTitle = space === null ? { title: 'measured only by a node that holds the snapshot' } : { title: `measured on ${space.measuredOn}` };
  return el('tr', { attrs: { 'data-snapshot': snapshot.name } }, [
    el('th', { attrs: { scope: 'row' } }, [el('code', { text: snapshot.name })]),
    el('td', { text: formatCreated(snapshot.createdAt), attrs: { title: snapshot.createdAt } }),
    el('td', { className: 'size', text: formatBytes(snapshot.sizeBytes) }),
    el('td', { className: 'holders', text: snapshot.holders.join(', ') || '—' }),
    el('td', { className: 'exclusive', text: space === null ? '—' : formatBytes(space.exclusiveBytes), attrs: spaceTitle }),
    el('td', { className: 'shared', text: space === null ? '—' : formatBytes(space.sharedBytes), attrs: spaceTitle }),
    el('td', { className: 'group' }, snapshot.groupId === undefined ? ['—'] : [el('code', { text: snapshot.groupId })]),
  ]);
}

/** @param {string} createdAt ISO 8601 */
function formatCreated(createdAt) {
  const date = new Date(createdAt);
  return Number.isNaN(date.getTime()) ? createdAt : date.toLocaleString();
}
