/**
 * iSCSI CHAP with a real plinthd and libiscsi's tools (issue 5: "CHAP
 * one-way and mutual with secrets per volume or cluster"; docs/iscsi.md
 * "CHAP"):
 *
 * - cluster-wide CHAP from `--iscsi-chap-user` + `--iscsi-chap-secret-file`:
 *   the right secret logs in, a wrong one and none are refused with a login
 *   error, discovery (`iscsi-ls`) needs it too, and the daemon keeps serving;
 * - a per-volume secret set with `plinth volume chap` overrides it for that
 *   target only (discovery and other targets keep the cluster-wide one);
 * - per-volume mutual CHAP through REST: the initiator checks the target's
 *   answer (libiscsi's `target_user`/`target_password` URL arguments);
 * - clearing restores the cluster-wide secret; no GET and no log line ever
 *   shows a secret.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { makeTempDir, PLINTH_IQN_PREFIX, spawnDaemon, startDaemon, type DaemonProcess } from '../helpers/daemon-harness.js';
import { describeRun, missingToolsReason, run, type RunResult } from '../setup/e2e-process.js';

const PLINTH_CLI = fileURLToPath(new URL('../../api/cli/plinth.js', import.meta.url));
const TOOL_TIMEOUT_MS = 20_000;
const CLUSTER = { user: 'cluster-user', secret: 'cluster-secret-0001' };
const VOLUME = { user: 'volume-user', secret: 'volume-secret-0002' };
const TARGET = { user: 'volume-target', secret: 'target-secret-0003' };
const ALL_SECRETS = [CLUSTER.secret, VOLUME.secret, TARGET.secret];

const skip = missingToolsReason(['iscsi-inq', 'iscsi-ls']);

interface Credentials {
  readonly user: string;
  readonly secret: string;
}

/** libiscsi's URL: `iscsi://user%secret@host:port/iqn/lun[?target_user=…&target_password=…]`. */
function withCredentials(url: string, initiator: Credentials | undefined, target?: Credentials): string {
  const withUser = initiator === undefined ? url : url.replace('iscsi://', `iscsi://${initiator.user}%${initiator.secret}@`);
  return target === undefined ? withUser : `${withUser}?target_user=${target.user}&target_password=${target.secret}`;
}

async function inquiry(daemon: DaemonProcess, volume: string, initiator: Credentials | undefined, target?: Credentials): Promise<RunResult> {
  return run('iscsi-inq', [withCredentials(daemon.iscsiUri(volume), initiator, target)], { timeoutMs: TOOL_TIMEOUT_MS });
}

async function discovery(daemon: DaemonProcess, initiator: Credentials | undefined): Promise<RunResult> {
  return run('iscsi-ls', [withCredentials(daemon.iscsiPortalUri(), initiator)], { timeoutMs: TOOL_TIMEOUT_MS });
}

function loggedIn(t: Test, result: RunResult, what: string): void {
  t.equal(result.code, 0, `${what}: ${describeRun(result)}`);
  t.match(result.stdout, /Peripheral Device Type:DIRECT_ACCESS/, `${what}: the LUN answers INQUIRY`);
}

function refused(t: Test, result: RunResult, what: string): void {
  t.not(result.code, 0, `${what} is refused: ${describeRun(result)}`);
  // A Login Response with an authentication failure (RFC 7143 §11.13.5), not a crash or a dropped socket.
  t.match(result.stderr, /Failed to log in to target|[Ll]ogin|authentication/i, `${what}: as a login failure`);
}

t.test('cluster-wide and per-volume CHAP, one-way and mutual, through libiscsi', { skip: skip ?? false }, async (t) => {
  const secretsDir = await makeTempDir(t, 'plinth-iscsi-chap-secrets-');
  const clusterSecretFile = join(secretsDir, 'cluster-secret');
  const volumeSecretFile = join(secretsDir, 'volume-secret');
  await writeFile(clusterSecretFile, `${CLUSTER.secret}\n`, { mode: 0o600 });
  await writeFile(volumeSecretFile, `${VOLUME.secret}\n`, { mode: 0o600 });
  const daemon = await startDaemon(t, {
    logLevel: 'debug',
    args: ['--iscsi-chap-user', CLUSTER.user, '--iscsi-chap-secret-file', clusterSecretFile],
  });
  for (const name of ['chap-a', 'chap-b']) {
    const created = await daemon.api('POST', '/v1/volumes', { name, size: '64MiB' });
    t.equal(created.status, 201, `create ${name}: ${JSON.stringify(created.body)}`);
  }

  await t.test('cluster-wide one-way CHAP on targets and discovery', async (t) => {
    loggedIn(t, await inquiry(daemon, 'chap-a', CLUSTER), 'the cluster secret');
    refused(t, await inquiry(daemon, 'chap-a', { user: CLUSTER.user, secret: 'wrong-secret-00000' }), 'a wrong secret');
    refused(t, await inquiry(daemon, 'chap-a', { user: 'someone-else', secret: CLUSTER.secret }), 'a wrong user');
    refused(t, await inquiry(daemon, 'chap-a', undefined), 'no CHAP at all');
    const listed = await discovery(daemon, CLUSTER);
    t.equal(listed.code, 0, `iscsi-ls with the cluster secret: ${describeRun(listed)}`);
    t.match(listed.stdout, `Target:${PLINTH_IQN_PREFIX}chap-a`);
    t.match(listed.stdout, `Target:${PLINTH_IQN_PREFIX}chap-b`);
    t.not((await discovery(daemon, undefined)).code, 0, 'iscsi-ls without CHAP is refused');
    t.equal(daemon.exitStatus, null, 'plinthd keeps serving after refused logins');
  });

  await t.test('a per-volume secret set with the CLI overrides it for that target only', async (t) => {
    const cli = await run(
      process.execPath,
      [PLINTH_CLI, '--api', daemon.apiUrl, '--data-dir', daemon.dataDir, 'volume', 'chap', 'chap-a', '--user', VOLUME.user, '--secret-file', volumeSecretFile],
      { timeoutMs: TOOL_TIMEOUT_MS },
    );
    t.equal(cli.code, 0, `plinth volume chap: ${describeRun(cli)}`);
    t.match(cli.stdout, /iSCSI CHAP set \(user volume-user\)/);
    loggedIn(t, await inquiry(daemon, 'chap-a', VOLUME), 'the volume secret on chap-a');
    refused(t, await inquiry(daemon, 'chap-a', CLUSTER), 'the cluster secret on chap-a');
    loggedIn(t, await inquiry(daemon, 'chap-b', CLUSTER), 'the cluster secret on chap-b');
    refused(t, await inquiry(daemon, 'chap-b', VOLUME), 'the volume secret on chap-b');
    t.equal((await discovery(daemon, CLUSTER)).code, 0, 'discovery keeps the cluster secret');
    t.not((await discovery(daemon, VOLUME)).code, 0, 'a volume secret does not open discovery');
  });

  await t.test('per-volume mutual CHAP through REST: the initiator checks the target', async (t) => {
    const set = await daemon.api('PUT', '/v1/volumes/chap-a/chap', { user: VOLUME.user, secret: VOLUME.secret, targetUser: TARGET.user, targetSecret: TARGET.secret });
    t.equal(set.status, 200, JSON.stringify(set.body));
    t.match(set.body, { chap: { user: VOLUME.user, mutual: true } });
    loggedIn(t, await inquiry(daemon, 'chap-a', VOLUME, TARGET), 'mutual CHAP with both secrets right');
    refused(t, await inquiry(daemon, 'chap-a', VOLUME, { user: TARGET.user, secret: 'not-the-target-0004' }), 'a target whose answer the initiator cannot verify');
    const short = await daemon.api('PUT', '/v1/volumes/chap-a/chap', { user: VOLUME.user, secret: 'too-short' });
    t.equal(short.status, 400, 'an 11-byte secret is refused');
    t.match(short.body, { error: { code: 'INVALID_ARGUMENT', message: /12 to 255 bytes/ } });
  });

  await t.test('clearing restores the cluster-wide secret; secrets never leave the daemon', async (t) => {
    const cleared = await daemon.api('DELETE', '/v1/volumes/chap-a/chap');
    t.equal(cleared.status, 200);
    t.match(cleared.body, { chap: null });
    loggedIn(t, await inquiry(daemon, 'chap-a', CLUSTER), 'the cluster secret on chap-a again');
    refused(t, await inquiry(daemon, 'chap-a', VOLUME), 'the old volume secret');
    const shown = JSON.stringify([(await daemon.api('GET', '/v1/volumes')).body, (await daemon.api('GET', '/v1/volumes/chap-a')).body]);
    const logs = daemon.describeOutput();
    for (const secret of ALL_SECRETS) {
      t.notOk(shown.includes(secret), 'no GET shows a secret');
      t.notOk(logs.includes(secret), 'no log line (at debug level) holds a secret');
    }
    t.equal(daemon.exitStatus, null, 'plinthd is still running');
  });
});

t.test('cluster-wide mutual CHAP from the environment; a short secret stops plinthd with a clear error', { skip: skip ?? false }, async (t) => {
  const secretsDir = await makeTempDir(t, 'plinth-iscsi-chap-mutual-');
  const targetSecretFile = join(secretsDir, 'target-secret');
  await writeFile(targetSecretFile, `${TARGET.secret}\n`, { mode: 0o600 });
  const daemon = await startDaemon(t, {
    logLevel: 'warn',
    env: { PLINTH_ISCSI_CHAP_USER: CLUSTER.user, PLINTH_ISCSI_CHAP_SECRET: CLUSTER.secret },
    args: ['--iscsi-chap-target-user', TARGET.user, '--iscsi-chap-target-secret-file', targetSecretFile],
  });
  const created = await daemon.api('POST', '/v1/volumes', { name: 'mutual', size: '64MiB' });
  t.equal(created.status, 201, JSON.stringify(created.body));
  loggedIn(t, await inquiry(daemon, 'mutual', CLUSTER, TARGET), 'cluster-wide mutual CHAP');
  refused(t, await inquiry(daemon, 'mutual', CLUSTER, { user: TARGET.user, secret: 'not-the-target-0004' }), 'a target answer that does not verify');
  refused(t, await inquiry(daemon, 'mutual', { user: CLUSTER.user, secret: 'wrong-secret-00000' }, TARGET), 'a wrong initiator secret');
  t.equal(daemon.exitStatus, null, 'plinthd keeps serving');

  const shortSecretFile = join(secretsDir, 'short');
  await writeFile(shortSecretFile, 'eleven-byte\n', { mode: 0o600 });
  const misconfigured = await spawnDaemon(t, { args: ['--iscsi-chap-user', 'u', '--iscsi-chap-secret-file', shortSecretFile] });
  const status = await misconfigured.waitForExit({ timeoutMs: 20_000 });
  t.not(status.code, 0, 'a short secret is a start-up error');
  t.match(misconfigured.describeOutput(), /--iscsi-chap-secret-file .* must be 12 to 255 bytes long, got 11/, 'naming the setting and the rule');
  t.notOk(misconfigured.describeOutput().includes('eleven-byte'), 'without quoting the secret');
});
