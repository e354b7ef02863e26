// @ts-check
import { ApiError } from './api-client.js';
import { el, renderIfChanged, typedById } from './dom.js';
import {
  clearScheduleEquivalent, cloneEquivalent, createSnapshotEquivalent, deleteSnapshotEquivalent,
  groupSnapshotEquivalent, listSnapshotsEquivalent, revertEquivalent, scheduleEquivalent,
} from './equivalents.js';
import { durationMs } from './format.js';
import { replaceOptions, sendAction, setStatus, showEquivalent, volumeChoiceLabel } from './form-helpers.js';
import { renderSnapshots } from './render-snapshots.js';

/**
 * The snapshot panel (issue 8, docs/dashboard.md "Snapshots"): the chosen
 * volume's snapshots and retention schedule, and the forms to take, clone,
 * revert and delete snapshots, set or clear the schedule, and take a group
 * snapshot. Only the chosen volume's snapshots are fetched on each refresh,
 * so the refresh stays two small calls more whatever the volume count.
 *
 * @typedef {import('./api-client.js').PlinthApi} PlinthApi
 * @typedef {import('./api-client.js').VolumeView} VolumeView
 * @typedef {import('./api-client.js').SnapshotView} SnapshotView
 * @typedef {import('./render-snapshots.js').SnapshotListing} SnapshotListing
 * @typedef {import('./form-helpers.js').Action} Action
 */

export class SnapshotForms {
  /** @type {PlinthApi} */ #api;
  /** @type {() => Promise<void>} */ #afterChange;
  /** @type {VolumeView[]} */ #volumes = [];
  /** Answers to an older choice of volume are dropped. */
  #listingSequence = 0;
  #status = typedById('snapshot-status', HTMLElement);
  #volume = typedById('snap-volume', HTMLSelectElement);
  #snapshot = typedById('snap-target', HTMLSelectElement);
  #groupVolumes = typedById('group-volumes', HTMLElement);
  #deleteDialog = typedById('confirm-snapshot-delete', HTMLDialogElement);
  #revertDialog = typedById('confirm-revert', HTMLDialogElement);

  /** @param {PlinthApi} api @param {() => Promise<void>} afterChange refreshes the views */
  constructor(api, afterChange) {
    this.#api = api;
    this.#afterChange = afterChange;
    this.#wireButtons();
    this.#volume.addEventListener('change', () => void this.#loadListing());
    // The volume table's "Snapshots" buttons choose the volume here.
    typedById('volumes', HTMLElement).addEventListener('click', (event) => {
      const button = event.target instanceof Element ? event.target.closest('button[data-show-snapshots]') : null;
      const name = button?.getAttribute('data-show-snapshots');
      if (name !== null && name !== undefined) this.select(name);
    });
    for (const form of ['snapshot-form', 'group-form']) {
      typedById(form, HTMLFormElement).addEventListener('input', () => this.#showEquivalents());
    }
    this.#showEquivalents();
  }

  #wireButtons() {
    const volume = () => this.#volumeName();
    typedById('snap-create-button', HTMLButtonElement).addEventListener('click', () => void this.#run(this.#createCall(), (name) => `Created snapshot ${volume()}@${name}.`));
    typedById('clone-button', HTMLButtonElement).addEventListener('click', () => void this.#run(this.#cloneCall(), (name) => `Cloned ${volume()}@${this.#snapshotName()} to volume ${name}.`));
    typedById('schedule-set-button', HTMLButtonElement).addEventListener('click', () => void this.#setSchedule());
    typedById('schedule-clear-button', HTMLButtonElement).addEventListener('click', () => void this.#run(this.#clearScheduleCall(), (name) => `Turned off the snapshot schedule of ${name}.`));
    typedById('group-form', HTMLFormElement).addEventListener('submit', (event) => {
      event.preventDefault();
      void this.#run(this.#groupCall(), (name) => `Created group snapshot ${name} of ${this.#groupChoice().join(', ')}.`);
    });
    typedById('snap-delete-button', HTMLButtonElement).addEventListener('click', () => {
      typedById('confirm-snapshot-delete-name', HTMLElement).textContent = `${this.#volumeName()}@${this.#snapshotName()}`;
      this.#deleteDialog.returnValue = '';
      this.#deleteDialog.showModal();
    });
    this.#deleteDialog.addEventListener('close', () => {
      if (this.#deleteDialog.returnValue === 'delete') void this.#run(this.#deleteCall(), (name) => `Deleted snapshot ${volume()}@${name}.`);
    });
    typedById('revert-button', HTMLButtonElement).addEventListener('click', () => {
      typedById('confirm-revert-volume', HTMLElement).textContent = this.#volumeName();
      typedById('confirm-revert-snapshot', HTMLElement).textContent = this.#snapshotName();
      this.#revertDialog.returnValue = '';
      this.#revertDialog.showModal();
    });
    // The daemon decides: a volume attached meanwhile is refused with VOLUME_ATTACHED, shown as is.
    this.#revertDialog.addEventListener('close', () => {
      if (this.#revertDialog.returnValue === 'revert') void this.#run(this.#revertCall(), (name) => `Reverted volume ${volume()} to ${name}.`);
    });
  }

  /**
   * Called on every refresh: the volume choices, then the chosen volume's snapshots.
   * @param {VolumeView[]} volumes
   */
  async update(volumes) {
    this.#volumes = volumes;
    replaceOptions(this.#volume, volumes.map((volume) => ({ value: volume.name, label: volumeChoiceLabel(volume) })));
    this.#updateGroupChoices(volumes);
    await this.#loadListing();
  }

  /** Shows this volume's snapshots (the volume table's "Snapshots" button). @param {string} name */
  select(name) {
    if (!this.#volumes.some((volume) => volume.name === name)) return;
    this.#volume.value = name;
    void this.#loadListing();
    typedById('snapshot-section', HTMLElement).scrollIntoView({ block: 'start' });
  }

  async #loadListing() {
    const sequence = ++this.#listingSequence;
    const volume = this.#volume.value;
    const listing = volume === '' ? undefined : await this.#fetchListing(volume);
    if (sequence !== this.#listingSequence) return;
    const container = typedById('snapshots', HTMLElement);
    if (listing === undefined) renderIfChanged(container, 'none', () => [el('p', { className: 'empty', text: 'No volumes yet.' })]);
    else renderIfChanged(container, listing, renderSnapshots);
    replaceOptions(this.#snapshot, (listing?.snapshots ?? []).map((snapshot) => ({ value: snapshot.name, label: snapshot.name })));
    this.#updateButtons();
    this.#showEquivalents();
  }

  /** @param {string} volume @returns {Promise<SnapshotListing>} */
  async #fetchListing(volume) {
    try {
      const [snapshots, schedule] = await Promise.all([this.#api.snapshots(volume), this.#fetchSchedule(volume)]);
      return { volume, snapshots, schedule };
    } catch (err) {
      return { volume, snapshots: [], schedule: undefined, error: err instanceof ApiError ? `${err.code}: ${err.message}` : String(err) };
    }
  }

  /** @param {string} volume undefined when the daemon does not serve schedules (404 on the route, not the volume) */
  async #fetchSchedule(volume) {
    try {
      return await this.#api.snapshotSchedule(volume);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404 && err.code !== 'VOLUME_NOT_FOUND') return undefined;
      throw err;
    }
  }

  #updateButtons() {
    const volume = this.#volumes.find((candidate) => candidate.name === this.#volume.value);
    const noVolume = volume === undefined;
    const noSnapshot = noVolume || this.#snapshot.options.length === 0;
    for (const id of ['snap-create-button', 'schedule-set-button', 'schedule-clear-button']) typedById(id, HTMLButtonElement).disabled = noVolume;
    for (const id of ['clone-button', 'snap-delete-button']) typedById(id, HTMLButtonElement).disabled = noSnapshot;
    // Revert is offered only for a detached volume (the state machine refuses it otherwise).
    const attachedTo = volume?.attachedTo ?? null;
    typedById('revert-button', HTMLButtonElement).disabled = noSnapshot || attachedTo !== null;
    typedById('revert-hint', HTMLElement).textContent = attachedTo === null ? '' : `Attached to ${attachedTo}: detach it to revert.`;
    typedById('group-button', HTMLButtonElement).disabled = this.#volumes.length === 0;
  }

  /** One checkbox per volume, rebuilt only when the names change; ticks survive. @param {VolumeView[]} volumes */
  #updateGroupChoices(volumes) {
    const names = volumes.map((volume) => volume.name);
    const shown = Array.from(this.#groupVolumes.querySelectorAll('input'), (input) => input.value);
    if (names.join('\n') === shown.join('\n')) return;
    const ticked = new Set(this.#groupChoice());
    this.#groupVolumes.replaceChildren(...names.map((name) => {
      const box = el('input', { attrs: { type: 'checkbox', name: 'groupVolume', value: name } });
      box.checked = ticked.has(name);
      return el('label', { className: 'check' }, [box, name]);
    }));
    this.#showEquivalents();
  }

  /** @returns {string[]} the ticked volumes, in table order */
  #groupChoice() {
    return Array.from(this.#groupVolumes.querySelectorAll('input'), (input) => (input.checked ? input.value : '')).filter((name) => name !== '');
  }

  #volumeName() {
    return this.#volume.value || 'VOLUME';
  }

  #snapshotName() {
    return this.#snapshot.value || 'SNAPSHOT';
  }

  /** @returns {Action} */
  #createCall() {
    const name = typedById('snap-name', HTMLInputElement).value.trim() || 'SNAPSHOT';
    return { name, call: createSnapshotEquivalent(this.#volumeName(), name) };
  }

  /** @returns {Action} */
  #cloneCall() {
    const name = typedById('clone-name', HTMLInputElement).value.trim() || 'NEW';
    return { name, call: cloneEquivalent(this.#volumeName(), this.#snapshotName(), name) };
  }

  /** @returns {Action} */
  #revertCall() {
    return { name: this.#snapshotName(), call: revertEquivalent(this.#volumeName(), this.#snapshotName()) };
  }

  /** @returns {Action} */
  #deleteCall() {
    return { name: this.#snapshotName(), call: deleteSnapshotEquivalent(this.#volumeName(), this.#snapshotName()) };
  }

  /** @returns {{ action: Action, problem: string | null }} */
  #scheduleCall() {
    const every = typedById('schedule-every', HTMLInputElement).value.trim();
    const keepText = typedById('schedule-keep', HTMLInputElement).value.trim();
    const everyMs = durationMs(every);
    const keep = /^\d{1,4}$/.test(keepText) ? Number(keepText) : null;
    const problem = everyMs === null
      ? `every: ${JSON.stringify(every)} is not a duration; use units ms, s, m, h, d, e.g. 1h or 30m`
      : keep === null ? `keep: ${JSON.stringify(keepText)} is not a whole number` : null;
    const call = scheduleEquivalent(this.#volumeName(), { every: every || 'INTERVAL', everyMs: everyMs ?? 0, keep: keep ?? 0 });
    return { action: { name: this.#volumeName(), call }, problem };
  }

  /** @returns {Action} */
  #clearScheduleCall() {
    return { name: this.#volumeName(), call: clearScheduleEquivalent(this.#volumeName()) };
  }

  /** @returns {Action} */
  #groupCall() {
    const name = typedById('group-name', HTMLInputElement).value.trim() || 'SNAPSHOT';
    return { name, call: groupSnapshotEquivalent(name, this.#groupChoice()) };
  }

  async #setSchedule() {
    const { action, problem } = this.#scheduleCall();
    if (problem !== null) {
      setStatus(this.#status, problem, 'error');
      return;
    }
    await this.#run(action, (name) => `Set the snapshot schedule of ${name}.`);
  }

  #showEquivalents() {
    showEquivalent('snap-list', listSnapshotsEquivalent(this.#volumeName()));
    showEquivalent('snap-create', this.#createCall().call);
    showEquivalent('clone', this.#cloneCall().call);
    showEquivalent('revert', this.#revertCall().call);
    showEquivalent('snap-delete', this.#deleteCall().call);
    showEquivalent('schedule-set', this.#scheduleCall().action.call);
    showEquivalent('schedule-clear', this.#clearScheduleCall().call);
    showEquivalent('group', this.#groupCall().call);
  }

  /** @param {Action} action @param {(name: string) => string} success */
  async #run(action, success) {
    await sendAction(this.#api, this.#status, action, success);
    await this.#afterChange();
  }
}
