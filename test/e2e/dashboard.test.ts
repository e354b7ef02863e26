/**
 * The web dashboard end to end (issue 6 "dashboard", docs/dashboard.md): a
 * real 3-node cluster, the page in headless Debian Chromium driven by
 * playwright-core. Log in (a wrong token first), see the nodes, then create,
 * grow, attach, detach and delete a volume through the forms, and take,
 * clone, revert and delete a snapshot (issue 8), checking each step through
 * the REST API; API refusals must reach the page as readable
 * messages, and the strict CSP must not block anything the page does.
 *
 * The screenshot goes to a temp dir; PLINTH_UPDATE_SCREENSHOT=1 (what
 * `npm run docs:screenshot` sets) also copies it to docs/images/dashboard.png.
 */
import { existsSync } from 'node:fs';
import { copyFile, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import t, { type Test } from 'tap';
import { makeTempDir, type DaemonProcess } from '../helpers/daemon-harness.js';
import { eventually } from '../helpers/eventually.js';
import { startCluster } from '../integration/fixtures/replication-cluster.js';

const CHROMIUM_PATH = '/usr/bin/chromium';
/** dist/test/e2e/ → the repo's docs/images/. */
const DOCS_SCREENSHOT_PATH = fileURLToPath(new URL('../../../docs/images/dashboard.png', import.meta.url));
const MIB = 1024 ** 2;
/** Evaluated in the page (a string: this file is compiled without the DOM types). */
const STORED_TOKEN_EXPRESSION = "window.sessionStorage.getItem('plinth.apiToken')";
/** Every wait in the page is bounded; the cluster answers in well under a second. */
const PAGE_TIMEOUT_MS = 15_000;

// Flags from the machine notes: no sandbox as root, and no background traffic
// (the machine's network is closed; only 127.0.0.1 may be reached).
const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-extensions', '--disable-default-apps',
];

const skip = existsSync(CHROMIUM_PATH) ? false : `${CHROMIUM_PATH} missing (Debian package chromium; test/setup/install-test-tools.sh installs it)`;

/** What every step of the scenario works with. */
interface DashboardSession {
  readonly page: Page;
  readonly n1: DaemonProcess;
  readonly n3: DaemonProcess;
  readonly token: string;
}

interface VolumeJson {
  readonly sizeBytes: number;
  readonly replicaCount: number;
  readonly attachedTo: string | null;
  readonly replicas: ReadonlyArray<{ readonly nodeId: string; readonly state: string }>;
}

async function openBrowser(t: Test): Promise<Browser> {
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, timeout: 30_000 });
  t.teardown(() => browser.close());
  return browser;
}

/**
 * Console errors and page errors (a CSP violation is logged as a console
 * error); the 401 and 409 answers this test provokes on purpose are expected.
 */
function collectPageErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (message) => {
    const expected = /Failed to load resource: the server responded with a status of (401|409)\b/.test(message.text());
    if (message.type() === 'error' && !expected) errors.push(message.text());
  });
  page.on('pageerror', (error) => errors.push(error.message));
  return errors;
}

async function volumeOf(daemon: DaemonProcess, name: string): Promise<VolumeJson | undefined> {
  const response = await daemon.api('GET', `/v1/volumes/${name}`);
  return response.status === 200 ? (response.body as VolumeJson) : undefined;
}

async function expectStatus(page: Page, text: string): Promise<void> {
  await page.locator('#action-status').filter({ hasText: text }).waitFor();
}

async function expectSnapshotStatus(page: Page, text: string): Promise<void> {
  await page.locator('#snapshot-status').filter({ hasText: text }).waitFor();
}

async function snapshotsOf(daemon: DaemonProcess, volume: string): Promise<ReadonlyArray<{ readonly name: string; readonly groupId?: string }>> {
  const response = await daemon.api('GET', `/v1/volumes/${volume}/snapshots`);
  return (response.body as { snapshots?: Array<{ name: string; groupId?: string }> }).snapshots ?? [];
}

t.test('the dashboard drives a 3-node cluster', { skip }, async (t) => {
  const [n1, , n3] = await startCluster(t, { dataDirPrefix: 'plinth-dash-' });
  await eventually('3 nodes up', 20_000, async () => {
    const nodes = await n1.api('GET', '/v1/nodes');
    const list = (nodes.body as { nodes?: Array<{ state: string }> }).nodes ?? [];
    return list.length === 3 && list.every((node) => node.state === 'up') ? true : undefined;
  });
  const browser = await openBrowser(t);
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.setDefaultTimeout(PAGE_TIMEOUT_MS);
  const pageErrors = collectPageErrors(page);
  const session: DashboardSession = { page, n1, n3, token: await n1.token() };

  await t.test('the page loads with its security headers and asks for the token', async (t) => pageAsksForToken(t, session));
  await t.test('a wrong token shows the API\'s message and is not kept', async (t) => wrongTokenRefused(t, session));
  await t.test('logging in shows the cluster and its nodes', async (t) => loginShowsNodes(t, session));
  await t.test('a periodic refresh leaves unchanged views alone (no flicker)', async (t) => refreshKeepsViews(t, session));
  await t.test('create through the form, with its CLI and REST equivalents', async (t) => createThroughForm(t, session));
  await t.test('an API refusal shows its message', async (t) => refusalShown(t, session));
  await t.test('grow, attach', async (t) => growAttach(t, session));
  await t.test('take a snapshot through the panel and see it listed, then screenshot', async (t) => snapshotTaken(t, session));
  await t.test('clone the snapshot; revert is not offered while attached', async (t) => snapshotCloned(t, session));
  await t.test('set the retention schedule, then turn it off', async (t) => scheduleSetAndCleared(t, session));
  await t.test('detach', async (t) => detach(t, session));
  await t.test('a revert the daemon refuses shows its error; a detached volume reverts', async (t) => revertRefusedThenDone(t, session));
  await t.test('a group snapshot of two volumes', async (t) => groupSnapshot(t, session));
  await t.test('delete the snapshot after confirming', async (t) => snapshotDeleted(t, session));
  await t.test('delete the volume after confirming', async (t) => deleteVolume(t, session));
  await t.test('a reload keeps the session; a node going down shows', async (t) => reloadAndNodeDown(t, session));

  t.same(pageErrors, [], 'no console errors, no CSP violations');
});

async function pageAsksForToken(t: Test, { page, n1 }: DashboardSession): Promise<void> {
  const response = await page.goto(`${n1.apiUrl}/`);
  t.equal(new URL(page.url()).pathname, '/ui/', '/ redirects to /ui/');
  t.match(response?.headers()['content-security-policy'] ?? '', /default-src 'self'.*frame-ancestors 'none'/);
  await page.locator('#login').waitFor();
  t.match(await page.locator('#login .hint').textContent(), /<data-dir>\/api-token/, 'says where the token lives');
}

async function wrongTokenRefused(t: Test, { page }: DashboardSession): Promise<void> {
  await page.fill('#login-token', 'not-the-token');
  await page.click('#login-form button[type=submit]');
  await page.locator('#login-error').filter({ hasText: 'wrong API token' }).waitFor();
  t.match(await page.locator('#login-error').textContent(), /UNAUTHORIZED: wrong API token/);
  t.equal(await page.evaluate(STORED_TOKEN_EXPRESSION), null);
}

async function loginShowsNodes(t: Test, { page, token }: DashboardSession): Promise<void> {
  await page.fill('#login-token', token);
  await page.click('#login-form button[type=submit]');
  await page.locator('#nodes [data-node-id]').nth(2).waitFor();
  t.same(await page.locator('#nodes [data-node-id]').evaluateAll((cards) => cards.map((card) => card.getAttribute('data-node-id'))), ['n1', 'n2', 'n3']);
  t.equal(await page.locator('#nodes .badge-up').count(), 3, 'all three up');
  t.equal(await page.locator('#nodes .badge-leader').count(), 1, 'one leader');
  t.equal(await page.locator('#nodes .pool-meter').count(), 3, 'a capacity bar per node');
  t.ok(await page.locator('#nodes .disk meter').count() >= 1, 'the local node lists its disk with a bar');
  t.match(await page.locator('#cluster').textContent(), /healthy/);
  t.notMatch(page.url(), new RegExp(token), 'the token is not in the URL');
  t.equal(await page.evaluate(STORED_TOKEN_EXPRESSION), token, 'kept in sessionStorage');
}

async function refreshKeepsViews(t: Test, { page }: DashboardSession): Promise<void> {
  await page.locator('#nodes article').first().evaluate((card) => card.setAttribute('data-marker', 'kept'));
  const before = await page.locator('#refresh-state').textContent();
  await page.locator('#refresh-state').filter({ hasNotText: before ?? '' }).waitFor();
  t.equal(await page.locator('#nodes article[data-marker=kept]').count(), 1, 'the node card element survived a refresh');
}

async function createThroughForm(t: Test, { page, n1 }: DashboardSession): Promise<void> {
  await page.fill('#create-name', 'web1');
  await page.fill('#create-size-value', '256');
  await page.selectOption('#create-size-unit', 'MiB');
  await page.selectOption('#create-replicas', '3');
  t.equal(await page.locator('#create-cli').textContent(), 'plinth volume create web1 --size 256MiB --replicas 3');
  t.equal(await page.locator('#create-rest').textContent(), 'POST /v1/volumes {"name":"web1","size":"256MiB","replicas":3}');
  await page.click('#create-button');
  await expectStatus(page, 'Created volume web1');
  const volume = await volumeOf(n1, 'web1');
  t.equal(volume?.sizeBytes, 256 * MIB);
  t.equal(volume?.replicaCount, 3);
  t.same(volume?.replicas.map((replica) => replica.nodeId).sort(), ['n1', 'n2', 'n3'], 'one replica per node');
  await page.locator('#volumes tr[data-volume=web1] .replica').nth(2).waitFor();
  t.match(await page.locator('#volumes tr[data-volume=web1]').textContent(), /256 MiB/);
}

async function refusalShown(t: Test, { page }: DashboardSession): Promise<void> {
  await page.click('#create-button');
  await expectStatus(page, 'VOLUME_EXISTS');
  t.match(await page.locator('#action-status').getAttribute('class'), /status-error/);
  t.match(await page.locator('#action-status').textContent(), /web1/, 'the message names the volume');
}

async function growAttach(t: Test, { page, n1 }: DashboardSession): Promise<void> {
  await page.selectOption('#target-volume', 'web1');
  await page.fill('#grow-size-value', '512');
  await page.selectOption('#grow-size-unit', 'MiB');
  t.equal(await page.locator('#grow-cli').textContent(), 'plinth volume resize web1 --size 512MiB');
  t.equal(await page.locator('#grow-rest').textContent(), 'PATCH /v1/volumes/web1 {"size":"512MiB"}');
  await page.click('#grow-button');
  await expectStatus(page, 'Resized volume web1');
  t.equal((await volumeOf(n1, 'web1'))?.sizeBytes, 512 * MIB);

  await page.selectOption('#attach-node', 'n2');
  t.equal(await page.locator('#attach-cli').textContent(), 'plinth volume attach web1 --node n2');
  await page.click('#attach-button');
  await expectStatus(page, 'Attached volume web1');
  t.equal((await volumeOf(n1, 'web1'))?.attachedTo, 'n2');
  await page.locator('#volumes tr[data-volume=web1] .attached').filter({ hasText: 'n2' }).waitFor();
}

async function snapshotTaken(t: Test, { page, n1 }: DashboardSession): Promise<void> {
  await page.click('#volumes button[data-show-snapshots=web1]');
  t.equal(await page.locator('#snap-volume').inputValue(), 'web1', 'the table\'s button picks the volume');
  await page.locator('#snapshots').filter({ hasText: 'web1 has no snapshots yet' }).waitFor();
  t.equal(await page.locator('#snap-list-cli').textContent(), 'plinth snapshot ls web1');
  await page.fill('#snap-name', 's1');
  t.equal(await page.locator('#snap-create-cli').textContent(), 'plinth snapshot create web1 s1');
  t.equal(await page.locator('#snap-create-rest').textContent(), 'POST /v1/volumes/web1/snapshots {"name":"s1"}');
  await page.click('#snap-create-button');
  await expectSnapshotStatus(page, 'Created snapshot web1@s1');
  const row = page.locator('#snapshots tr[data-snapshot=s1]');
  await row.waitFor();
  t.match(await row.locator('.size').textContent(), /512 MiB/, 'the size it was taken at');
  t.same((await row.locator('.holders').textContent())?.split(', ').sort(), ['n1', 'n2', 'n3'], 'held by every in-sync replica');
  t.match(await page.locator('#volumes tr[data-volume=web1] .snapshot-count').textContent(), /^1 /, 'the volume table counts it');
  t.same((await snapshotsOf(n1, 'web1')).map((snapshot) => snapshot.name), ['s1'], 'the API lists it');
  await saveScreenshot(t, page);
}

async function snapshotCloned(t: Test, { page, n1 }: DashboardSession): Promise<void> {
  t.equal(await page.locator('#snap-target').inputValue(), 's1');
  await page.fill('#clone-name', 'web1-copy');
  t.equal(await page.locator('#clone-cli').textContent(), 'plinth volume clone web1@s1 web1-copy');
  t.equal(await page.locator('#clone-rest').textContent(), 'POST /v1/volumes/web1/snapshots/s1/clone {"name":"web1-copy"}');
  await page.click('#clone-button');
  await expectSnapshotStatus(page, 'Cloned web1@s1 to volume web1-copy');
  t.equal((await volumeOf(n1, 'web1-copy'))?.sizeBytes, 512 * MIB, 'the clone exists with the snapshot\'s size');
  await page.locator('#volumes tr[data-volume=web1-copy]').waitFor();
  t.ok(await page.locator('#revert-button').isDisabled(), 'revert is not offered for an attached volume');
  t.match(await page.locator('#revert-hint').textContent(), /Attached to n2: detach it to revert/);
}

async function scheduleSetAndCleared(t: Test, { page, n1 }: DashboardSession): Promise<void> {
  await page.fill('#schedule-every', 'soon');
  await page.click('#schedule-set-button');
  await expectSnapshotStatus(page, 'is not a duration');
  await page.fill('#schedule-every', '2h');
  await page.fill('#schedule-keep', '12');
  t.equal(await page.locator('#schedule-set-cli').textContent(), 'plinth snapshot schedule web1 --every 2h --keep 12');
  t.equal(await page.locator('#schedule-set-rest').textContent(), 'PUT /v1/volumes/web1/snapshot-schedule {"everyMs":7200000,"keep":12}');
  await page.click('#schedule-set-button');
  await expectSnapshotStatus(page, 'Set the snapshot schedule of web1');
  t.same((await n1.api('GET', '/v1/volumes/web1/snapshot-schedule')).body, { volume: 'web1', schedule: { everyMs: 7_200_000, keep: 12 } });
  await page.locator('#snapshots .schedule').filter({ hasText: 'every 2h, keeping the newest 12' }).waitFor();
  t.equal(await page.locator('#schedule-clear-cli').textContent(), 'plinth snapshot schedule web1 --off');
  await page.click('#schedule-clear-button');
  await expectSnapshotStatus(page, 'Turned off the snapshot schedule of web1');
  t.same((await n1.api('GET', '/v1/volumes/web1/snapshot-schedule')).body, { volume: 'web1', schedule: null });
  await page.locator('#snapshots .schedule').filter({ hasText: 'Retention schedule: none' }).waitFor();
}

async function groupSnapshot(t: Test, { page, n1 }: DashboardSession): Promise<void> {
  await page.fill('#group-name', 'g1');
  await page.check('#group-volumes input[value=web1]');
  await page.check('#group-volumes input[value=web1-copy]');
  t.equal(await page.locator('#group-cli').textContent(), 'plinth snapshot create-group g1 web1,web1-copy');
  t.equal(await page.locator('#group-rest').textContent(), 'POST /v1/snapshot-groups {"name":"g1","volumes":["web1","web1-copy"]}');
  await page.click('#group-button');
  await expectSnapshotStatus(page, 'Created group snapshot g1 of web1, web1-copy');
  const [original, copy] = [await snapshotsOf(n1, 'web1'), await snapshotsOf(n1, 'web1-copy')];
  const groupId = original.find((snapshot) => snapshot.name === 'g1')?.groupId;
  t.ok(groupId, 'web1 has g1 with a group id');
  t.equal(copy.find((snapshot) => snapshot.name === 'g1')?.groupId, groupId, 'the clone has g1 in the same group');
  await page.locator('#snapshots tr[data-snapshot=g1] .group').filter({ hasText: groupId ?? 'missing' }).waitFor();
}

async function detach(t: Test, { page, n1 }: DashboardSession): Promise<void> {
  await page.selectOption('#target-volume', 'web1');
  t.equal(await page.locator('#detach-cli').textContent(), 'plinth volume detach web1');
  await page.click('#detach-button');
  await expectStatus(page, 'Detached volume web1');
  t.equal((await volumeOf(n1, 'web1'))?.attachedTo, null);
}

/**
 * Revert is offered once the page sees the volume detached; the volume is
 * attached behind the page's back while the confirmation is open, so the
 * daemon refuses and its message must show.
 */
async function revertRefusedThenDone(t: Test, { page, n1 }: DashboardSession): Promise<void> {
  await page.locator('#revert-button:enabled').waitFor();
  t.equal(await page.locator('#revert-cli').textContent(), 'plinth volume revert web1 s1');
  t.equal(await page.locator('#revert-rest').textContent(), 'POST /v1/volumes/web1/snapshots/s1/revert');
  await page.click('#revert-button');
  t.equal(await page.locator('#confirm-revert-snapshot').textContent(), 's1', 'the dialog names the snapshot');
  const attached = await n1.api('POST', '/v1/volumes/web1/attach', { node: 'n1' });
  t.equal(attached.status, 200, 'attached through the API meanwhile');
  await page.click('#confirm-revert-button');
  await expectSnapshotStatus(page, 'VOLUME_ATTACHED');
  t.match(await page.locator('#snapshot-status').getAttribute('class'), /status-error/);
  t.match(await page.locator('#snapshot-status').textContent(), /detach it before reverting/, 'the daemon\'s own message');
  await page.locator('#revert-hint').filter({ hasText: 'Attached to n1' }).waitFor();

  t.equal((await n1.api('POST', '/v1/volumes/web1/detach', {})).status, 200);
  await page.locator('#revert-button:enabled').waitFor();
  await page.click('#revert-button');
  await page.click('#confirm-revert-button');
  await expectSnapshotStatus(page, 'Reverted volume web1 to s1');
}

async function snapshotDeleted(t: Test, { page, n1 }: DashboardSession): Promise<void> {
  t.equal(await page.locator('#snap-delete-cli').textContent(), 'plinth snapshot rm web1 s1');
  t.equal(await page.locator('#snap-delete-rest').textContent(), 'DELETE /v1/volumes/web1/snapshots/s1');
  await page.click('#snap-delete-button');
  await page.click('#confirm-snapshot-delete button[value=cancel]');
  t.same((await snapshotsOf(n1, 'web1')).map((snapshot) => snapshot.name), ['s1', 'g1'], 'cancel keeps the snapshot');
  await page.click('#snap-delete-button');
  t.equal(await page.locator('#confirm-snapshot-delete-name').textContent(), 'web1@s1');
  await page.click('#confirm-snapshot-delete-button');
  await expectSnapshotStatus(page, 'Deleted snapshot web1@s1');
  t.same((await snapshotsOf(n1, 'web1')).map((snapshot) => snapshot.name), ['g1'], 'gone from the API');
  await page.locator('#snapshots tr[data-snapshot=s1]').waitFor({ state: 'detached' });
  t.ok(await volumeOf(n1, 'web1-copy'), 'the clone outlives the snapshot');
}

async function deleteVolume(t: Test, { page, n1 }: DashboardSession): Promise<void> {
  t.equal(await page.locator('#delete-rest').textContent(), 'DELETE /v1/volumes/web1');
  await page.click('#delete-button');
  await page.click('#confirm-delete button[value=cancel]');
  t.ok(await volumeOf(n1, 'web1'), 'cancel keeps the volume');
  await page.click('#delete-button');
  t.equal(await page.locator('#confirm-delete-name').textContent(), 'web1', 'the dialog names the volume');
  await page.click('#confirm-delete-button');
  await expectStatus(page, 'Deleted volume web1');
  t.equal(await volumeOf(n1, 'web1'), undefined, 'gone from the API');
  await page.locator('#volumes tr[data-volume=web1]').waitFor({ state: 'detached' });
}

async function reloadAndNodeDown(t: Test, { page, n3 }: DashboardSession): Promise<void> {
  await page.reload();
  await page.locator('#nodes [data-node-id=n3] .badge-up').waitFor();
  t.ok(await page.locator('#login').isHidden(), 'no second login within the tab');
  await n3.kill();
  await page.locator('#nodes [data-node-id=n3] .badge-down').waitFor({ timeout: 20_000 });
  await page.locator('#cluster').filter({ hasText: '1 node down' }).waitFor();
  t.match(await page.locator('#cluster').textContent(), /degraded/);
}

/** Always into a temp dir; into docs/images only when asked (never during a normal run). */
async function saveScreenshot(t: Test, page: Page): Promise<void> {
  const dir = await makeTempDir(t, 'plinth-dash-shot-');
  const path = join(dir, 'dashboard.png');
  await page.screenshot({ path, fullPage: true });
  t.ok(existsSync(path), 'screenshot written');
  if (process.env['PLINTH_UPDATE_SCREENSHOT'] === '1') {
    await mkdir(dirname(DOCS_SCREENSHOT_PATH), { recursive: true });
    await copyFile(path, DOCS_SCREENSHOT_PATH);
    t.comment(`updated ${DOCS_SCREENSHOT_PATH}`);
  }
}
