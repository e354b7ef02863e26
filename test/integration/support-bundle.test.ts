import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { makeTempDir, type DaemonProcess } from '../helpers/daemon-harness.js';
import { eventually, startCluster } from './fixtures/replication-cluster.js';

/**
 * Issue 6 "Support" with three real daemons: one operation sent to a
 * follower is found by its request id in every node's log, and
 * `plinth support bundle` gathers every node (a dead one listed as
 * unreachable) with no secret anywhere in the archive.
 */
const PLINTH_CLI = fileURLToPath(new URL('../../api/cli/plinth.js', import.meta.url));
const CHAP_SECRET = 'chap-Sekr1t-XyZ';

function runCli(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [PLINTH_CLI, ...args], { timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
    });
  });
}

function withId(daemon: DaemonProcess, requestId: string): Array<Record<string, unknown>> {
  return daemon.logRecords().filter((record) => record['requestId'] === requestId);
}

async function roles(nodes: readonly DaemonProcess[]): Promise<{ leader: DaemonProcess; followers: DaemonProcess[] }> {
  const ids = ['n1', 'n2', 'n3'];
  const leaderId = await eventually('a leader', 10_000, async () => {
    const cluster = await nodes[0]?.api('GET', '/v1/cluster');
    const body = cluster?.body as { leaderId?: string | null } | undefined;
    return typeof body?.leaderId === 'string' ? body.leaderId : undefined;
  });
  const leader = nodes[ids.indexOf(leaderId)];
  if (leader === undefined) throw new Error(`unknown leader ${leaderId}`);
  return { leader, followers: nodes.filter((node) => node !== leader) };
}

async function extract(t: Test, archive: string): Promise<{ dir: string; files: string[] }> {
  const dir = join(await makeTempDir(t, 'plinth-support-out-'), 'x');
  await mkdir(dir);
  execFileSync('tar', ['-xzf', archive, '-C', dir]);
  const files = (await readdir(dir, { recursive: true })).map(String).sort();
  return { dir, files };
}

t.test('request ids across nodes, and a support bundle of the whole cluster', async (t) => {
  const nodes = await startCluster(t, { dataDirPrefix: 'plinth-support-', logLevel: 'info' });
  const { leader, followers } = await roles(nodes);
  const [follower, other] = followers;
  if (follower === undefined || other === undefined) throw new Error('expected two followers');
  const followerId = `n${nodes.indexOf(follower) + 1}`;

  await t.test('a volume create sent to a follower is found by its id in every node\'s log', async (t) => {
    const requestId = `it-${randomUUID()}`;
    const created = await follower.api('POST', '/v1/volumes', { name: 'traced', size: '64MiB', replicas: 3 }, { headers: { 'x-request-id': requestId } });
    t.equal(created.status, 201, JSON.stringify(created.body));
    const messages = (daemon: DaemonProcess): string[] => withId(daemon, requestId).map((record) => String(record['msg']));
    t.ok(messages(follower).includes('incoming request'), 'the receiving API line');
    t.ok(messages(follower).includes('forwarding a proposal to the leader'), 'the forward');
    t.ok(messages(leader).includes('proposing a command forwarded by a follower'), 'the leader logs the forwarded proposal');
    for (const [index, node] of nodes.entries()) {
      await eventually(`the apply on n${index + 1}`, 10_000, async () =>
        messages(node).includes(`applied volume.create requestId=${requestId}`) ? true : undefined);
    }
    t.pass('every node logged the apply with the id');
    t.notOk(nodes.some((node) => node.logRecords().some((record) => 'reqId' in record)), 'one key everywhere: no reqId');
  });

  await t.test('an attach logs the volume session it opens with its id', async (t) => {
    const requestId = `it-${randomUUID()}`;
    const attached = await follower.api('POST', '/v1/volumes/traced/attach', { node: followerId }, { headers: { 'x-request-id': requestId }, timeoutMs: 20_000 });
    t.equal(attached.status, 200, JSON.stringify(attached.body));
    t.ok(withId(follower, requestId).some((record) => record['msg'] === 'volume session serving'), 'the session open carries the id');
    const chap = await follower.api('PUT', '/v1/volumes/traced/chap', { user: 'iqn.test', secret: CHAP_SECRET });
    t.equal(chap.status, 200, JSON.stringify(chap.body));
  });

  const secrets = [await follower.token(), (await readFile(join(follower.dataDir, 'cluster-secret'), 'utf8')).trim(), CHAP_SECRET];

  await t.test('plinth support bundle gathers all three nodes, with no secret in it', async (t) => {
    const archive = join(await makeTempDir(t, 'plinth-support-bundle-'), 'bundle.tar.gz');
    const result = await runCli(['--api', follower.apiUrl, '--data-dir', follower.dataDir, 'support', 'bundle', '--output', archive]);
    t.equal(result.code, 0, result.stderr);
    t.match(result.stdout, /n1: ok[\s\S]*n2: ok[\s\S]*n3: ok/);
    const { dir, files } = await extract(t, archive);
    for (const id of ['n1', 'n2', 'n3']) {
      for (const name of ['node.json', 'config.json', 'pool.json', 'raft.json', 'logs.jsonl']) t.ok(files.includes(`${id}/${name}`), `${id}/${name}`);
    }
    t.ok(files.includes('manifest.json') && files.includes('cluster.json'));
    const cluster = JSON.parse(await readFile(join(dir, 'cluster.json'), 'utf8')) as { state: { volumes: Record<string, { chap?: { secret?: string } }>; nodes: Record<string, unknown> } };
    t.same(Object.keys(cluster.state.nodes).sort(), ['n1', 'n2', 'n3']);
    t.equal(cluster.state.volumes['traced']?.chap?.secret, '<redacted>');
    const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as { nodes: Array<{ nodeId: string; status: string }> };
    t.same(manifest.nodes.map((node) => `${node.nodeId}:${node.status}`), ['n1:ok', 'n2:ok', 'n3:ok']);
    const leaderLogs = await readFile(join(dir, `n${nodes.indexOf(leader) + 1}`, 'logs.jsonl'), 'utf8');
    t.match(leaderLogs, /applied volume\.create requestId=it-/, 'the logs are in the bundle');
    for (const secret of secrets) {
      // Exit status 1: no match in any extracted file (nor in the raw archive).
      const grep = spawnSync('grep', ['-rlF', '--', secret, dir, archive], { encoding: 'utf8' });
      t.same({ status: grep.status, found: grep.stdout.trim() }, { status: 1, found: '' }, `secret ${secret.slice(0, 4)}… appears nowhere`);
    }
  });

  await t.test('with one node killed the bundle still succeeds and lists it as unreachable', async (t) => {
    await other.kill();
    const otherId = `n${nodes.indexOf(other) + 1}`;
    const archive = join(await makeTempDir(t, 'plinth-support-bundle-'), 'bundle.tar.gz');
    const result = await runCli(['--api', follower.apiUrl, '--data-dir', follower.dataDir, '--json', 'support', 'bundle', '--output', archive, '--since', '10m']);
    t.equal(result.code, 0, result.stderr);
    const { dir, files } = await extract(t, archive);
    const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as { nodes: Array<{ nodeId: string; status: string; error?: { code: string } }> };
    const dead = manifest.nodes.find((node) => node.nodeId === otherId);
    t.equal(dead?.status, 'unreachable');
    t.type(dead?.error?.code, 'string');
    t.equal(manifest.nodes.filter((node) => node.status === 'ok').length, 2);
    t.notOk(files.some((file) => file.startsWith(`${otherId}/`)), 'no directory for the dead node');
  });
});
