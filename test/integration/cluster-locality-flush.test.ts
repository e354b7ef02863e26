/**
 * A data-locality move under a writing, flushing client (issue 4 "data
 * locality"; ARCHITECTURE invariants: a client never sees EIO because the
 * cluster moves a replica). Three real plinthd processes on 127.0.0.1
 * (test/integration/fixtures/replication-cluster.ts): a 2-replica volume
 * held by two nodes is attached on the third by an NBD client that writes
 * and flushes in a loop; the leader's locality reconciler adds a replica
 * there, the owner rebuilds it, and the farthest replica retires. Every
 * command of the client must succeed, and everything it wrote reads back.
 */
import { spawn } from 'node:child_process';
import t from 'tap';
import type { DaemonProcess } from '../helpers/daemon-harness.js';
import { eventually, PYTHON, startCluster, writeClient } from './fixtures/replication-cluster.js';

const DATA_DIR_PREFIX = 'plinth-locflush-';
/** The whole move must happen within this; the client stops itself after LOAD_LIMIT_S anyway. */
const MOVE_TIMEOUT_MS = 40_000;
const LOAD_LIMIT_S = 45;
/** Keep writing this long after the move settled (flushes ask every replica for a marker at most once a second). */
const AFTER_MOVE_MS = 2500;

interface VolumeJson {
  readonly replicas: readonly { readonly nodeId: string; readonly state: string }[];
  readonly attachedTo: string | null;
  readonly state: string;
}

interface LoopResult {
  readonly ops: number;
  readonly errors: readonly string[];
  readonly checked: number;
  readonly bad: readonly number[];
}

/** Writes checksummed 4 KiB blocks, a flush after each, until a line on stdin or the time limit; then reads them all back. */
const LOOP_PY = String.raw`import hashlib, json, os, random, select, sys, time
import nbd

BLOCK = 4096
h = nbd.NBD()
h.connect_uri(sys.argv[1])
limit = time.time() + float(sys.argv[2])
rng = random.Random(5)
blocks = min(h.get_size() // BLOCK, 4096)
expected = {}
errors = []
ops = 0
print(json.dumps({"connected": True}), flush=True)
while time.time() < limit and not errors:
    if select.select([sys.stdin], [], [], 0)[0]:
        break
    offset = rng.randrange(blocks) * BLOCK
    body = os.urandom(BLOCK - 32)
    data = hashlib.sha256(body).digest() + body
    try:
        h.pwrite(data, offset)
        expected[offset] = hashlib.sha256(data).hexdigest()
        h.flush()
        ops += 2
    except nbd.Error as e:
        errors.append("%s after %d commands" % (e.string, ops))
bad = []
for offset, sha in expected.items():
    try:
        if hashlib.sha256(h.pread(BLOCK, offset)).hexdigest() != sha:
            bad.append(offset)
    except nbd.Error as e:
        errors.append("read back: %s" % e.string)
        bad.append(offset)
        break
print(json.dumps({"ops": ops, "errors": errors, "checked": len(expected), "bad": bad}), flush=True)
h.shutdown()
`;

async function volume(via: DaemonProcess, name: string): Promise<VolumeJson> {
  const response = await via.api('GET', `/v1/volumes/${name}`);
  if (response.status !== 200) throw new Error(`GET volume ${name}: ${response.status} ${JSON.stringify(response.body)}`);
  return response.body as VolumeJson;
}

function inSyncIds(view: VolumeJson): string[] {
  return view.replicas.filter((replica) => replica.state === 'in-sync').map((replica) => replica.nodeId);
}

t.test('a locality move under writes and flushes never fails a client command', async (t) => {
  const members = await startCluster(t, { dataDirPrefix: DATA_DIR_PREFIX });
  const [n1] = members;
  const script = await writeClient(t, LOOP_PY);
  const made = await n1.api('POST', '/v1/volumes', { name: 'mv', size: '64MiB', replicas: 2 });
  t.equal(made.status, 201, `create mv: ${JSON.stringify(made.body)}`);
  const holders = (await volume(n1, 'mv')).replicas.map((replica) => replica.nodeId);
  const awayIndex = members.findIndex((_, index) => !holders.includes(`n${index + 1}`));
  const away = members[awayIndex];
  if (away === undefined) throw new Error(`every node holds a replica of mv: ${holders.join(',')}`);
  const awayId = `n${awayIndex + 1}`;

  const client = spawn(PYTHON, [script, away.nbdUri('mv'), String(LOAD_LIMIT_S)], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.teardown(() => {
    client.kill('SIGKILL');
  });
  let output = '';
  client.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => client.on('exit', (code) => resolve(code)));
  await eventually('the client to connect', 15_000, async () => (output.includes('"connected"') ? true : undefined));
  await eventually(`mv attached on ${awayId}`, 15_000, async () => ((await volume(n1, 'mv')).attachedTo === awayId ? true : undefined));
  t.pass(`mv attached on ${awayId}, replicas on ${holders.join(',')}`);

  let sawThree = false;
  const settled = await eventually(`a replica on ${awayId} in sync and one retired`, MOVE_TIMEOUT_MS, async () => {
    const view = await volume(n1, 'mv');
    sawThree ||= view.replicas.length === 3;
    const ids = view.replicas.map((replica) => replica.nodeId);
    return ids.length === 2 && ids.includes(awayId) && inSyncIds(view).length === 2 ? view : undefined;
  });
  t.ok(sawThree, 'the move added a third replica before one retired');
  await new Promise((resolve) => setTimeout(resolve, AFTER_MOVE_MS));
  client.stdin.end('stop\n');
  const code = await exited;
  t.equal(code, 0, 'the client exited cleanly');
  const result = JSON.parse(output.trim().split('\n').pop() ?? '{}') as LoopResult;
  t.same(result.errors, [], 'no write or flush failed during the move');
  t.ok(result.ops > 20, `the client kept writing and flushing (${result.ops} commands)`);
  t.same(result.bad, [], `all ${result.checked} written blocks read back`);
  t.equal((await volume(n1, 'mv')).state, 'healthy', 'mv healthy');
  t.ok(settled.replicas.some((replica) => holders.includes(replica.nodeId)), 'one of the original replicas stays');
});
