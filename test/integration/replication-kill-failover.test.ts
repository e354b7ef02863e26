/**
 * Issue 4, "show it": three real plinthd processes on 127.0.0.1; a 3-replica
 * volume written over NBD through node 1 with checksummed 4 KiB blocks
 * (every acknowledged write recorded, flushed at the end); kill -9 node 1;
 * once the cluster marks it down, node 2's NBD port takes the volume over
 * (new generation, failover resync, invariants 3 and 4) and every
 * acknowledged block reads back intact. Prints the time from kill to the
 * first successful read.
 */
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { makeTempDir, startDaemon, type DaemonProcess, type TeardownHost } from '../helpers/daemon-harness.js';

const ENV = { PLINTH_RAFT_TICK_MS: '50', PLINTH_NODE_DOWN_AFTER_MS: '2000' };
const PYTHON = '/usr/bin/python3';

/** A small libnbd client (python3-libnbd): checksummed 4 KiB blocks, fills, checks, queued writes. */
const CLIENT_PY = String.raw`import hashlib, json, os, random, sys, time
import nbd

BLOCK = 4096

def connect(uri):
    h = nbd.NBD()
    h.connect_uri(uri)
    return h

def write(uri, count, seed):
    h = connect(uri)
    rng = random.Random(int(seed))
    blocks = h.get_size() // BLOCK
    for _ in range(int(count)):
        offset = rng.randrange(blocks) * BLOCK
        body = os.urandom(BLOCK - 32)
        data = hashlib.sha256(body).digest() + body
        h.pwrite(data, offset)
        print(json.dumps({"offset": offset, "sha": hashlib.sha256(data).hexdigest()}), flush=True)
    h.flush()
    print(json.dumps({"flushed": True}), flush=True)
    h.shutdown()

def verify(uri, path):
    h = connect(uri)
    expected = json.load(open(path))
    bad = []
    for offset, sha in expected:
        data = h.pread(BLOCK, offset)
        if hashlib.sha256(data).hexdigest() != sha or hashlib.sha256(data[32:]).digest() != data[:32]:
            bad.append(offset)
    print(json.dumps({"checked": len(expected), "bad": bad}), flush=True)
    h.shutdown()

def fill(uri, byte, offsets):
    h = connect(uri)
    for offset in offsets.split(","):
        h.pwrite(bytes([int(byte)]) * BLOCK, int(offset))
    h.flush()
    print(json.dumps({"filled": True}), flush=True)
    h.shutdown()

def queued(uri, byte, offsets):
    """Connect, wait for 'go' on stdin, then send writes without waiting (they queue at a frozen server)."""
    h = connect(uri)
    print(json.dumps({"connected": True}), flush=True)
    sys.stdin.readline()
    cookies = [h.aio_pwrite(nbd.Buffer.from_bytearray(bytearray([int(byte)]) * BLOCK), int(offset)) for offset in offsets.split(",")]
    h.aio_flush()
    for _ in range(5):
        h.poll(0)
    print(json.dumps({"sent": len(cookies)}), flush=True)
    deadline = time.time() + 30
    done = 0
    while time.time() < deadline and h.aio_in_flight() > 0:
        try:
            h.poll(500)
        except nbd.Error:
            break
    print(json.dumps({"finished": True, "in_flight": h.aio_in_flight()}), flush=True)

def check(uri, byte, offsets):
    h = connect(uri)
    wrong = [int(o) for o in offsets.split(",") if h.pread(BLOCK, int(o)) != bytes([int(byte)]) * BLOCK]
    print(json.dumps({"wrong": wrong}), flush=True)
    h.shutdown()

if __name__ == "__main__":
    mode = sys.argv[1]
    {"write": write, "verify": verify, "fill": fill, "queued": queued, "check": check}[mode](*sys.argv[2:])
`;

async function startMember(t: TeardownHost, id: string, join?: DaemonProcess): Promise<DaemonProcess> {
  const args = ['--node-id', id, ...(join === undefined ? [] : ['--join', `127.0.0.1:${join.ports.peer}`])];
  return startDaemon(t, { args, env: ENV, logLevel: 'warn' });
}

async function startCluster(t: TeardownHost): Promise<[DaemonProcess, DaemonProcess, DaemonProcess]> {
  const n1 = await startMember(t, 'n1');
  const n2 = await startMember(t, 'n2', n1);
  const n3 = await startMember(t, 'n3', n2);
  return [n1, n2, n3];
}

async function writeClient(t: TeardownHost): Promise<string> {
  const dir = await makeTempDir(t, 'plinth-replication-client-');
  const path = join(dir, 'client.py');
  await writeFile(path, CLIENT_PY);
  return path;
}

/** Run the client; resolves with its JSON output lines, rejects on a non-zero exit or after timeoutMs. */
function runClient(script: string, args: readonly string[], timeoutMs: number): Promise<Array<Record<string, unknown>>> {
  return new Promise((resolve, reject) => {
    execFile(PYTHON, [script, ...args], { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error !== null) {
        reject(new Error(`client ${args[0] ?? ''} failed: ${error.message} ${stderr.slice(-500)}`));
        return;
      }
      resolve(stdout.split('\n').filter((line) => line.trim() !== '').map((line) => JSON.parse(line) as Record<string, unknown>));
    });
  });
}

/** Poll `probe` until it returns a value, bounded by `timeoutMs`. */
async function eventually<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = 'no attempt';
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
      last = 'condition not met';
    } catch (err) {
      last = err;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`timed out waiting for ${what}: ${last instanceof Error ? last.message : String(last)}`);
}

async function createVolume(t: Test, via: DaemonProcess, name: string): Promise<void> {
  const created = await via.api('POST', '/v1/volumes', { name, size: '64MiB', replicas: 3 });
  t.equal(created.status, 201, `create ${name}: ${JSON.stringify(created.body)}`);
}

const WRITES = 300;

t.test('kill -9 the owner: every acknowledged block reads back through a survivor', async (t) => {
  const script = await writeClient(t);
  const [n1, n2] = await startCluster(t);
  await createVolume(t, n1, 'db');

  const lines = await runClient(script, ['write', n1.nbdUri('db'), String(WRITES), '7'], 60_000);
  t.same(lines.at(-1), { flushed: true }, 'the writer flushed');
  const acknowledged = new Map<number, string>();
  for (const line of lines) if (typeof line.offset === 'number' && typeof line.sha === 'string') acknowledged.set(line.offset, line.sha);
  t.ok(acknowledged.size > WRITES / 2, `${acknowledged.size} distinct blocks acknowledged`);
  const attached = await n1.api('GET', '/v1/volumes/db');
  t.match(attached.body, { attachedTo: 'n1', state: 'healthy' }, 'attached to n1 through its NBD port');

  const expectations = join(await makeTempDir(t, 'plinth-replication-expect-'), 'expected.json');
  await writeFile(expectations, JSON.stringify([...acknowledged]));
  await n1.kill();
  const killedAt = Date.now();
  const verified = await eventually('node 2 to serve the volume', 40_000, async () => {
    const output = await runClient(script, ['verify', n2.nbdUri('db'), expectations], 30_000);
    return output[0];
  });
  const failoverMs = Date.now() - killedAt;
  t.equal(verified.checked, acknowledged.size, 'every acknowledged block was read');
  t.same(verified.bad, [], 'every acknowledged block is intact');
  t.comment(`failover: kill -9 to first successful read through node 2 took ${failoverMs} ms`);

  const after = await n2.api('GET', '/v1/volumes/db');
  t.match(after.body, { attachedTo: 'n2', state: 'degraded' }, 'node 2 owns the volume; n1\'s replica is out of the in-sync set');
  const generation = (after.body as { generation: number }).generation;
  t.ok(generation >= 2, `the takeover committed a new generation (${generation})`);
});
