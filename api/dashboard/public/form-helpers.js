// @ts-check
import { ApiError } from './api-client.js';
import { typedById } from './dom.js';
import { describeRest } from './equivalents.js';

/**
 * What the action forms share (volume-forms.js, snapshot-forms.js): show an
 * action's CLI and REST equivalent, send exactly that REST call and put the
 * outcome in a status line, keep select choices stable across refreshes.
 *
 * @typedef {import('./api-client.js').PlinthApi} PlinthApi
 * @typedef {import('./equivalents.js').Equivalent} Equivalent
 * @typedef {{ name: string, call: Equivalent }} Action
 */

/**
 * Fills `#ACTION-cli` and `#ACTION-rest`.
 * @param {string} action @param {Equivalent} equivalent
 */
export function showEquivalent(action, equivalent) {
  typedById(`${action}-cli`, HTMLElement).textContent = equivalent.cli;
  typedById(`${action}-rest`, HTMLElement).textContent = describeRest(equivalent.rest);
}

/** @param {HTMLElement} status @param {string} text @param {'ok' | 'error' | 'pending'} kind */
export function setStatus(status, text, kind) {
  status.textContent = text;
  status.className = `status status-${kind}`;
}

/**
 * Sends the call and reports the outcome; API refusals show the daemon's own
 * message (e.g. VOLUME_ATTACHED: volume "db" is attached to node n2; …).
 * @param {PlinthApi} api @param {HTMLElement} status @param {Action} action
 * @param {(name: string) => string} success
 * @returns {Promise<boolean>} whether the daemon accepted it
 */
export async function sendAction(api, status, action, success) {
  setStatus(status, 'Working…', 'pending');
  try {
    await api.send(action.call.rest);
    setStatus(status, success(action.name), 'ok');
    return true;
  } catch (err) {
    const message = err instanceof ApiError ? `${err.code}: ${err.message}` : `unexpected failure: ${String(err)}`;
    setStatus(status, message, 'error');
    return false;
  }
}

/**
 * Rewrites a select's options only when they changed, keeping the selection.
 * @param {HTMLSelectElement} select @param {{ value: string, label: string }[]} choices
 */
export function replaceOptions(select, choices) {
  const current = Array.from(select.options, (option) => `${option.value}\u0000${option.label}`).join('\n');
  if (current === choices.map((choice) => `${choice.value}\u0000${choice.label}`).join('\n')) return;
  const selected = select.value;
  select.replaceChildren(...choices.map((choice) => new Option(choice.label, choice.value)));
  if (choices.some((choice) => choice.value === selected)) select.value = selected;
}

/** How a volume is named in the pickers: where it is attached, or that it is still being received. @param {import('./api-client.js').VolumeView} volume */
export function volumeChoiceLabel(volume) {
  if (volume.state === 'receiving') return `${volume.name} (receiving)`;
  return `${volume.name} (${volume.attachedTo === null ? 'detached' : `on ${volume.attachedTo}`})`;
}
