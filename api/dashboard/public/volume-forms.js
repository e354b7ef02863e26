// @ts-check
import { typedById } from './dom.js';
import {
  attachEquivalent, createEquivalent, deleteEquivalent, detachEquivalent, resizeEquivalent,
} from './equivalents.js';
import { replaceOptions, sendAction, showEquivalent, volumeChoiceLabel } from './form-helpers.js';

/**
 * The action forms: create, and grow / attach / detach / delete of a chosen
 * volume. Each form shows its CLI and REST equivalent as the user types and
 * sends exactly that REST call. Answers and API errors land in one status line.
 *
 * @typedef {import('./api-client.js').PlinthApi} PlinthApi
 * @typedef {import('./api-client.js').NodeView} NodeView
 * @typedef {import('./api-client.js').VolumeView} VolumeView
 * @typedef {import('./equivalents.js').Equivalent} Equivalent
 */

export class VolumeForms {
  /** @type {PlinthApi} */ #api;
  /** @type {() => Promise<void>} */ #afterChange;
  #status = typedById('action-status', HTMLElement);
  #targetVolume = typedById('target-volume', HTMLSelectElement);
  #attachNode = typedById('attach-node', HTMLSelectElement);
  #deleteDialog = typedById('confirm-delete', HTMLDialogElement);

  /** @param {PlinthApi} api @param {() => Promise<void>} afterChange refreshes the views */
  constructor(api, afterChange) {
    this.#api = api;
    this.#afterChange = afterChange;
    typedById('create-form', HTMLFormElement).addEventListener('submit', (event) => {
      event.preventDefault();
      void this.#run(this.#createCall(), (name) => `Created volume ${name}.`);
    });
    typedById('grow-button', HTMLButtonElement).addEventListener('click', () => void this.#run(this.#growCall(), (name) => `Resized volume ${name}.`));
    typedById('attach-button', HTMLButtonElement).addEventListener('click', () => void this.#run(this.#attachCall(), (name) => `Attached volume ${name}.`));
    typedById('detach-button', HTMLButtonElement).addEventListener('click', () => void this.#run(this.#detachCall(), (name) => `Detached volume ${name}.`));
    typedById('delete-button', HTMLButtonElement).addEventListener('click', () => this.#askToDelete());
    this.#deleteDialog.addEventListener('close', () => {
      if (this.#deleteDialog.returnValue === 'delete') void this.#run(this.#deleteCall(), (name) => `Deleted volume ${name}.`);
    });
    for (const form of ['create-form', 'volume-form']) {
      typedById(form, HTMLFormElement).addEventListener('input', () => this.#showEquivalents());
    }
    this.#showEquivalents();
  }

  /**
   * Refreshes the volume and node choices, keeping what the user picked.
   * @param {VolumeView[]} volumes @param {NodeView[]} nodes
   */
  updateChoices(volumes, nodes) {
    replaceOptions(this.#targetVolume, volumes.map((volume) => ({ value: volume.name, label: volumeChoiceLabel(volume) })));
    replaceOptions(this.#attachNode, nodes.map((node) => ({ value: node.id, label: node.state === 'up' ? node.id : `${node.id} (down)` })));
    const noVolume = volumes.length === 0;
    for (const id of ['grow-button', 'attach-button', 'detach-button', 'delete-button']) typedById(id, HTMLButtonElement).disabled = noVolume;
    this.#showEquivalents();
  }

  /** @returns {{ name: string, call: Equivalent }} */
  #createCall() {
    const name = typedById('create-name', HTMLInputElement).value.trim();
    const replicasText = typedById('create-replicas', HTMLSelectElement).value;
    const size = sizeFrom('create-size-value', 'create-size-unit');
    return { name, call: createEquivalent({ name: name || 'NAME', size, ...(replicasText === '' ? {} : { replicas: Number(replicasText) }) }) };
  }

  #growCall() {
    const name = this.#targetName();
    return { name, call: resizeEquivalent(name, sizeFrom('grow-size-value', 'grow-size-unit')) };
  }

  #attachCall() {
    const name = this.#targetName();
    return { name, call: attachEquivalent(name, this.#attachNode.value || 'NODE') };
  }

  #detachCall() {
    const name = this.#targetName();
    return { name, call: detachEquivalent(name) };
  }

  #deleteCall() {
    const name = this.#targetName();
    return { name, call: deleteEquivalent(name) };
  }

  #targetName() {
    return this.#targetVolume.value || 'NAME';
  }

  #askToDelete() {
    typedById('confirm-delete-name', HTMLElement).textContent = this.#targetName();
    this.#deleteDialog.returnValue = '';
    this.#deleteDialog.showModal();
  }

  #showEquivalents() {
    showEquivalent('create', this.#createCall().call);
    showEquivalent('grow', this.#growCall().call);
    showEquivalent('attach', this.#attachCall().call);
    showEquivalent('detach', this.#detachCall().call);
    showEquivalent('delete', this.#deleteCall().call);
  }

  /**
   * Sends the call, reports the outcome, refreshes the views.
   * @param {{ name: string, call: Equivalent }} action
   * @param {(name: string) => string} success
   */
  async #run(action, success) {
    await sendAction(this.#api, this.#status, action, success);
    await this.#afterChange();
  }
}

/** e.g. "1GiB": the API and the CLI both take sizes with binary units. @param {string} valueId @param {string} unitId */
function sizeFrom(valueId, unitId) {
  const value = typedById(valueId, HTMLInputElement).value.trim();
  return value === '' ? 'SIZE' : `${value}${typedById(unitId, HTMLSelectElement).value}`;
}
