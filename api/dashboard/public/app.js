// @ts-check
import { ApiError, PlinthApi } from './api-client.js';
import { byId, renderIfChanged, typedById } from './dom.js';
import { Refresher } from './refresher.js';
import { renderCluster } from './render-cluster.js';
import { renderNodes } from './render-nodes.js';
import { renderVolumes } from './render-volumes.js';
import { SnapshotForms } from './snapshot-forms.js';
import { forgetToken, loadToken, saveToken } from './token-store.js';
import { VolumeForms } from './volume-forms.js';

/**
 * The dashboard's entry point: log in with the API token, then show the
 * cluster, refreshed every REFRESH_INTERVAL_MS (docs/dashboard.md).
 */
const REFRESH_INTERVAL_MS = 2000;

const api = new PlinthApi(loadToken);
const refresher = new Refresher(REFRESH_INTERVAL_MS, refresh);
const forms = new VolumeForms(api, () => refresher.refreshNow());
const snapshotForms = new SnapshotForms(api, () => refresher.refreshNow());

const loginSection = byId('login');
const dashboard = byId('dashboard');
const loginError = byId('login-error');
const connectionError = byId('connection-error');

typedById('login-form', HTMLFormElement).addEventListener('submit', (event) => {
  event.preventDefault();
  void logIn(typedById('login-token', HTMLInputElement).value.trim());
});
typedById('logout', HTMLButtonElement).addEventListener('click', () => logOut(''));

if (loadToken() === null) showLogin('');
else showDashboard();

/** Checks the token with one real call before keeping it. @param {string} token */
async function logIn(token) {
  saveToken(token);
  try {
    await api.cluster();
  } catch (err) {
    forgetToken();
    showLogin(err instanceof ApiError ? `${err.code}: ${err.message}` : String(err));
    return;
  }
  typedById('login-token', HTMLInputElement).value = '';
  showDashboard();
}

/** @param {string} message why the user is asked to log in (empty on a first visit) */
function logOut(message) {
  refresher.stop();
  forgetToken();
  showLogin(message);
}

/** @param {string} message */
function showLogin(message) {
  dashboard.hidden = true;
  byId('logout').hidden = true;
  loginSection.hidden = false;
  loginError.textContent = message;
  typedById('login-token', HTMLInputElement).focus();
}

function showDashboard() {
  loginSection.hidden = true;
  loginError.textContent = '';
  dashboard.hidden = false;
  byId('logout').hidden = false;
  refresher.start();
}

/** One refresh: the three views in parallel, render only what changed, then the chosen volume's snapshots. */
async function refresh() {
  try {
    const [cluster, nodes, volumes] = await Promise.all([api.cluster(), api.nodes(), api.volumes()]);
    connectionError.hidden = true;
    byId('topbar-cluster').textContent = `cluster ${cluster.clusterId}`;
    renderIfChanged(byId('cluster'), { cluster, nodes, volumes }, renderCluster);
    renderIfChanged(byId('nodes'), nodes, renderNodes);
    renderIfChanged(byId('volumes'), volumes, renderVolumes);
    forms.updateChoices(volumes, nodes);
    await snapshotForms.update(volumes);
    byId('refresh-state').textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      logOut(`${err.code}: ${err.message}`);
      return;
    }
    // Keep the last views on screen and say why they are stale.
    connectionError.textContent = `Could not refresh: ${err instanceof ApiError ? `${err.code}: ${err.message}` : String(err)}`;
    connectionError.hidden = false;
  }
}
