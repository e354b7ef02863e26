/**
 * Issue 4 "Drain" and data locality, with four real plinthd processes on
 * 127.0.0.1 (test/integration/fixtures/replication-cluster.ts).
 *   1. A 3-replica volume on n1..n3, written through n1 (its owner). `plinth
 *      node drain n2 --wait` (the CLI): the leader adds a replica on n4, n1's
 *      session rebuilds it, then n2's replica is removed; polled all along,
 *      the volume never has fewer than 3 in-sync replicas. The data read
 *      through n4 (detach, attach there by connecting) is intact.
 *   2. A volume attached on the draining node with a client connected: the
 *      drain reports it as blocking, naming the volume and the way out.
 *   3. Locality: a 2-replica volume attached on a node holding none of it
 *      gains a replica there, then the farthest one retires; healthy, 2
 *      replicas, the owner's among them, data intact.
 */
import { execFile, spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { makeTempDir, type DaemonProcess } from '../helpers/daemon-harness.js';
import { eventually, PYTHON, runClient, startCluster, startMember, writeClient } from './fixtures/replication-cluster.js';

const PLINTH_CLI = fileURLToPath(new URL('../../api/cli/plinth.js', import.meta.url));
const DATA_DIR_PREFIX = 'plinth-drain-';

interface ReplicaJson {
  readonly nodeId: string;
  readonly state: string;
}
interface VolumeJson {
  readonly replicas: readonly ReplicaJson[];
  readonly attachedTo: string | null;
  readonly state: string;
}
interface DrainJson {
  readonly replicasLeft: number;
  readonly attachedVolumes: readonly string[];
  readonly blocking: readonly { readonly volume: string; readonly reason: string }[];
  readonly done: boolean;
}
interface NodeJson {
  readonly id: string;
  readonly drain?: DrainJson;
}

async function volume(via: DaemonProcess, name: string): Promise<VolumeJson> {
  const response = await via.api('GET', `/v1/volumes/${name}`);
  if (response.status !== 200) throw new Error(`GET volume ${name}: ${response.status} ${JSON.stringify(response.body)}`);
  return response.body as VolumeJson;
}

async function node(via: DaemonProcess, id: string): Promise<NodeJson> {
  const response = await via.api('GET', '/v1/nodes');
  const found = (response.body as { nodes: NodeJson[] }).nodes.find((candidate) => candidate.id === id);
  if (found === undefined) throw new Error(`node ${id} not listed`);
  return found;
}

function inSync(view: VolumeJson): string[] {
  return view.replicas.filter((replica) => replica.state === 'in-sync').map((replica) => replica.nodeId).sort();
}

/** Runs the CLI against `via`; resolves with its exit code and output. */
function cli(via: DaemonProcess, args: readonly string[], timeoutMs: number): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [PLINTH_CLI, '--api', via.apiUrl, '--data-dir', via.dataDir, ...args], { timeout: timeoutMs }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Writes 64 checksummed blocks through `uri`; returns the expectations file for `verify`. */
async function writeKnownData(t: Test, script: string, uri: string, seed: number): Promise<string> {
  const lines = await runClient(script, ['write', uri, '64', String(seed)], 30_000);
  const expected = new Map<number, string>();
  for (const line of lines) if (typeof line['offset'] === 'number' && typeof line['sha'] === 'string') expected.set(line['offset'], line['sha']);
  t.ok(lines.some((line) => line['flushed'] === true), 'written and flushed');
  const path = join(await makeTempDir(t, 'plinth-drain-expect-'), 'expected.json');
  await writeFile(path, JSON.stringify([...expected.entries()]));
  return path;
}

async function verify(t: Test, script: string, uri: string, expected: string): Promise<void> {
  const count = (JSON.parse(await readFile(expected, 'utf8')) as unknown[]).length;
  const [result] = await runClient(script, ['verify', uri, expected], 30_000);
  t.same(result, { checked: count, bad: [] }, `all ${count} blocks intact through ${uri}`);
}

t.test('node drain, a drain blocked by a client, data locality', async (t) => {
  const [n1, n2, n3] = await startCluster(t, { dataDirPrefix: DATA_DIR_PREFIX });
  const script = await writeClient(t);
  const created = await n1.api('POST', '/v1/volumes', { name: 'dv', size: '64MiB', replicas: 3 });
  t.equal(created.status, 201, `create dv: ${JSON.stringify(created.body)}`);
  const expected = await writeKnownData(t, script, n1.nbdUri('dv'), 7);
  const n4 = await startMember(t, 'n4', n3, 'warn', DATA_DIR_PREFIX);
  await eventually('n4 up', 15_000, async () => ((await n1.api('GET', '/v1/nodes')).body as { nodes: NodeJson[] }).nodes.length === 4 || undefined);
  t.same((await volume(n1, 'dv')).replicas.map((r) => r.nodeId).sort(), ['n1', 'n2', 'n3'], 'dv starts on n1..n3');
  t.equal((await volume(n1, 'dv')).attachedTo, 'n1');

  await t.test('drain n2: the replica moves to n4, never below 3 in sync', async (t) => {
    const drain = cli(n1, ['node', 'drain', 'n2', '--wait'], 45_000);
    let polls = 0;
    let sawN4 = false;
    let done = false;
    const deadline = Date.now() + 45_000;
    while (!done && Date.now() < deadline) {
      const view = await volume(n1, 'dv');
      polls += 1;
      if (inSync(view).length < 3) t.fail(`only ${inSync(view).join(',')} in sync at poll ${polls}`);
      sawN4 ||= view.replicas.some((replica) => replica.nodeId === 'n4');
      done = (await node(n1, 'n2')).drain?.done === true;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    t.ok(done, `n2 drained after ${polls} polls`);
    t.ok(sawN4, 'n4 got a replica during the move');
    const result = await drain;
    t.equal(result.code, 0, `plinth node drain n2 --wait: ${result.stdout} ${result.stderr}`);
    t.match(result.stdout, /node n2 drained/);
    const after = await volume(n1, 'dv');
    t.same(inSync(after), ['n1', 'n3', 'n4'], 'in sync on n1, n3, n4');
    t.equal(after.replicas.length, 3);
    t.match(await node(n3, 'n2'), { drain: { replicasLeft: 0, attachedVolumes: [], blocking: [], done: true } }, 'every node shows the drain done');
    const detached = await n1.api('POST', '/v1/volumes/dv/detach', {});
    t.equal(detached.status, 200, `detach: ${JSON.stringify(detached.body)}`);
    await verify(t, script, n4.nbdUri('dv'), expected);
    t.equal((await volume(n1, 'dv')).attachedTo, 'n4', 'served by n4 now');
  });

  await t.test('a volume attached on the draining node with a client blocks the drain', async (t) => {
    const made = await n3.api('POST', '/v1/volumes', { name: 'bv', size: '64MiB', replicas: 2 });
    t.equal(made.status, 201, `create bv: ${JSON.stringify(made.body)}`);
    t.notOk((await volume(n1, 'bv')).replicas.some((replica) => replica.nodeId === 'n2'), 'no new replica lands on draining n2');
    const holder = spawn(PYTHON, ['-c', HOLD_PY, n2.nbdUri('bv')], { stdio: ['pipe', 'pipe', 'inherit'] });
    t.teardown(() => {
      holder.kill('SIGKILL');
    });
    await eventually('client connected through n2', 15_000, async () => ((await volume(n1, 'bv')).attachedTo === 'n2' ? true : undefined));
    const blocked = await eventually('drain blocked by bv', 10_000, async () => {
      const drain = (await node(n1, 'n2')).drain;
      return drain !== undefined && !drain.done && drain.blocking.length > 0 ? drain : undefined;
    });
    t.same(blocked.attachedVolumes, ['bv']);
    t.match(blocked.blocking[0]?.reason ?? '', /bv is attached on draining node n2.*plinth volume attach bv --node OTHER --force/);
    holder.stdin?.end();
    // Once the client is gone the draining node detaches the idle volume itself (drain-attachments.ts).
    const finished = await eventually('the drain to finish once bv is idle', 20_000, async () => {
      const drain = (await node(n1, 'n2')).drain;
      return drain?.done === true ? drain : undefined;
    });
    t.same(finished.attachedVolumes, [], 'nothing attached on n2 any more');
    t.equal((await volume(n1, 'bv')).attachedTo, null, 'n2 detached the idle volume');
    const undrain = await cli(n1, ['node', 'undrain', 'n2'], 15_000);
    t.equal(undrain.code, 0, `plinth node undrain n2: ${undrain.stderr}`);
    t.equal((await node(n1, 'n2')).drain, undefined, 'n2 no longer draining');
  });

  await t.test('locality: attach where no replica is, a replica follows, the farthest retires', async (t) => {
    const made = await n1.api('POST', '/v1/volumes', { name: 'lv', size: '64MiB', replicas: 2 });
    t.equal(made.status, 201, `create lv: ${JSON.stringify(made.body)}`);
    const holders = (await volume(n1, 'lv')).replicas.map((replica) => replica.nodeId);
    const away = [n1, n2, n3, n4].find((member) => !holders.includes(nodeIdOf(member, [n1, n2, n3, n4])));
    if (away === undefined) throw new Error('no node without a replica');
    const awayId = nodeIdOf(away, [n1, n2, n3, n4]);
    const localData = await writeKnownData(t, script, away.nbdUri('lv'), 11);
    t.equal((await volume(n1, 'lv')).attachedTo, awayId, `lv attached on ${awayId}, replicas on ${holders.join(',')}`);
    const settled = await eventually(`a replica on ${awayId} and one retired`, 40_000, async () => {
      const view = await volume(n1, 'lv');
      const ids = view.replicas.map((replica) => replica.nodeId);
      return view.state === 'healthy' && ids.length === 2 && ids.includes(awayId) && inSync(view).length === 2 ? view : undefined;
    });
    t.ok(settled.replicas.some((replica) => holders.includes(replica.nodeId)), 'one of the original replicas stays');
    await verify(t, script, away.nbdUri('lv'), localData);
  });
});

function nodeIdOf(member: DaemonProcess, all: readonly DaemonProcess[]): string {
  return `n${all.indexOf(member) + 1}`;
}

/** Connects and holds the connection until stdin closes (a client the drain cannot move). */
const HOLD_PY = String.raw`import sys
import nbd
h = nbd.NBD()
h.connect_uri(sys.argv[1])
h.pread(4096, 0)
sys.stdin.read()
h.shutdown()
`;
