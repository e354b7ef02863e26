import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';
import { makeTempDir, spawnDaemon, startDaemon } from '../helpers/daemon-harness.js';

const run = promisify(execFile);
const PLINTH_CLI = fileURLToPath(new URL('../../api/cli/plinth.js', import.meta.url));

function field(body: unknown, key: string): unknown {
  return typeof body === 'object' && body !== null && key in body ? (body as Record<string, unknown>)[key] : undefined;
}

t.test('start: probes answer, token and node id are written', async (t) => {
  const daemon = await startDaemon(t, { args: ['--node-id', 'node-a'] });
  const health = await fetch(`${daemon.apiUrl}/healthz`);
  t.equal(health.status, 200);
  t.same(await health.json(), { status: 'ok' });
  const ready = await fetch(`${daemon.apiUrl}/readyz`);
  t.same(await ready.json(), { ready: true, reasons: [] });

  const tokenStat = await stat(join(daemon.dataDir, 'api-token'));
  t.equal(tokenStat.mode & 0o777, 0o600, 'the token is 0600');
  t.match(await daemon.token(), /^[0-9a-f]{64}$/, '32 random bytes as hex');
  t.equal((await readFile(join(daemon.dataDir, 'node-id'), 'utf8')).trim(), 'node-a');

  const unauthorized = await fetch(`${daemon.apiUrl}/v1/volumes`);
  t.equal(unauthorized.status, 401);
  const cluster = await daemon.api('GET', '/v1/cluster');
  t.equal(cluster.status, 200);
  t.equal(field(cluster.body, 'leaderId'), 'node-a');
  t.equal(field(cluster.body, 'nodeCount'), 1);
  const nodes = await daemon.api('GET', '/v1/nodes');
  t.match(nodes.body, { nodes: [{ id: 'node-a', state: 'up', addresses: { nbd: `127.0.0.1:${daemon.ports.nbd}` } }] });

  const metrics = await (await fetch(`${daemon.apiUrl}/metrics`)).text();
  t.match(metrics, /^plinth_disk_capacity_bytes\{disk="[^"]+",path="[^"]+"\} \d+$/m);
  t.match(metrics, /^plinth_volumes 0$/m);
  t.match(metrics, /^plinth_process_cpu_seconds_total /m, 'default metrics carry the plinth_ prefix');
  t.match(metrics, /^plinth_raft_is_leader 1$/m, 'a one-member cluster leads itself');
  t.match(metrics, /^plinth_raft_term [1-9]\d*$/m);
  t.match(metrics, /^plinth_raft_applied_index [1-9]\d*$/m, 'bootstrap entries were applied');
  t.match(metrics, /^plinth_raft_leader_changes_total 1$/m);
  t.match(metrics, /^# TYPE plinth_raft_proposal_duration_seconds histogram$/m);

  const messages = daemon.logMessages();
  t.ok(messages.includes('plinthd ready'), 'logs readiness');
  t.ok(messages.includes('iSCSI server listening'), 'serves iSCSI');
  const readyRecord = daemon.logRecords().find((record) => record['msg'] === 'plinthd ready');
  t.equal(readyRecord?.['nbd'], `127.0.0.1:${daemon.ports.nbd}`, 'logs the NBD address');
  t.equal(readyRecord?.['iscsi'], `127.0.0.1:${daemon.ports.iscsi}`, 'logs the iSCSI address');
  t.equal(readyRecord?.['peer'], `127.0.0.1:${daemon.ports.peer}`, 'serves the peer port (Raft, even single-node)');
  t.equal(readyRecord?.['mode'], 'bootstrap', 'an empty data dir bootstraps a one-member cluster');

  const status = await daemon.stop();
  t.same(status, { code: 0, signal: null, forced: false }, 'SIGTERM exits 0');
  t.ok(daemon.logMessages().includes('plinthd stopped'));
});

t.test('volumes survive a restart, data included', async (t) => {
  const dataDir = await makeTempDir(t);
  const first = await startDaemon(t, { dataDir });
  const created = await first.api('POST', '/v1/volumes', { name: 'db1', size: '64MiB' });
  t.equal(created.status, 201, JSON.stringify(created.body));
  t.equal(field(created.body, 'sizeBytes'), 64 * 1024 ** 2);

  // Write through NBD (attaches the volume to this node), then stop cleanly.
  const payload = randomBytes(1024 * 1024);
  const source = join(dataDir, 'payload.bin');
  await writeFile(source, payload);
  await run('nbdcopy', ['--', source, first.nbdUri('db1')], { timeout: 30_000 });
  const attached = await first.api('GET', '/v1/volumes/db1');
  t.equal(field(attached.body, 'attachedTo'), (await readFile(join(dataDir, 'node-id'), 'utf8')).trim());
  t.equal(field(attached.body, 'generation'), 1);
  // The NBD writes were metered on their way to the volume (daemon/metrics/metered-device.ts).
  const metrics = await (await fetch(`${first.apiUrl}/metrics`)).text();
  const written = /^plinth_volume_written_bytes_total\{volume="db1",protocol="nbd"\} (\d+)$/m.exec(metrics);
  t.ok(Number(written?.[1]) >= payload.length, `written bytes counted: ${written?.[1]}`);
  t.match(metrics, /^plinth_volume_io_operations_total\{volume="db1",protocol="nbd",op="write"\} [1-9]\d*$/m);
  t.match(metrics, /^plinth_volume_io_duration_seconds_count\{volume="db1",protocol="nbd",op="write"\} [1-9]\d*$/m);
  t.match(metrics, /^plinth_volume_state\{volume="db1",state="healthy"\} 1$/m);
  t.match(metrics, /^plinth_raft_proposal_duration_seconds_count [1-9]\d*$/m, 'the create and attach proposals were timed');
  t.equal((await first.stop()).code, 0);

  const second = await startDaemon(t, { dataDir, ports: first.ports });
  const listed = await second.api('GET', '/v1/volumes');
  t.match(listed.body, { volumes: [{ name: 'db1', sizeBytes: 64 * 1024 ** 2, generation: 1 }] });
  const copy = join(dataDir, 'copy.bin');
  await run('nbdcopy', ['--', second.nbdUri('db1'), copy], { timeout: 30_000 });
  const read = await readFile(copy);
  t.ok(read.subarray(0, payload.length).equals(payload), 'the data written before the restart reads back');
  t.ok(read.subarray(payload.length).every((byte) => byte === 0), 'the rest reads as zeroes');
  t.equal((await second.stop()).code, 0);
});

t.test('the plinth CLI creates a volume through the REST API', async (t) => {
  const daemon = await startDaemon(t);
  const { stdout } = await run(process.execPath, [PLINTH_CLI, '--api', daemon.apiUrl, '--data-dir', daemon.dataDir, '--json', 'volume', 'create', 'web', '--size', '1GiB'], {
    timeout: 20_000,
  });
  t.match(JSON.parse(stdout), { name: 'web', sizeBytes: 1024 ** 3 });
  t.match((await daemon.api('GET', '/v1/volumes/web')).body, { name: 'web', replicaCount: 1, attachedTo: null });
  const refused = await daemon.api('POST', '/v1/volumes', { name: 'r3', size: '1GiB', replicas: 3 });
  t.match(refused.body, { error: { code: 'INVALID_ARGUMENT', message: '3 replicas need 3 nodes; the cluster has 1' } });
});

t.test('a second daemon on the same data dir is refused', async (t) => {
  const first = await startDaemon(t);
  const second = await spawnDaemon(t, { dataDir: first.dataDir });
  const status = await second.waitForExit();
  t.equal(status.code, 1);
  t.match(second.stderr(), new RegExp(`^plinthd: data dir ${first.dataDir} is in use by another plinthd \\(DATA_DIR_LOCKED\\)\\n$`));
  t.equal((await fetch(`${first.apiUrl}/readyz`)).status, 200, 'the first one keeps serving');
  t.equal((await first.stop()).code, 0);
});

t.test('with no --disk, one sparse 64 GiB file disk under the data dir', async (t) => {
  const daemon = await startDaemon(t, { disks: null });
  const disk = await stat(join(daemon.dataDir, 'disks', 'disk0.img'));
  t.equal(disk.size, 64 * 1024 ** 3);
  t.ok(disk.blocks * 512 < 256 * 1024 ** 2, `sparse: ${disk.blocks * 512} bytes allocated`);
  t.equal((await daemon.stop()).code, 0);
});
