/**
 * Issue 4, cluster lifecycle: `volume detach` and `volume rm` work from any
 * node. Three real plinthd processes on 127.0.0.1. A detach committed on a
 * non-owner closes the owner's session and drops its NBD clients; a delete
 * committed on a non-owner frees the volume's extents on every replica
 * holder (each node's own live pool figure in `node ls`).
 */
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { makeTempDir, startDaemon, type DaemonProcess, type TeardownHost } from '../helpers/daemon-harness.js';
import { eventually } from '../helpers/eventually.js';

const ENV = { PLINTH_RAFT_TICK_MS: '50', PLINTH_NODE_DOWN_AFTER_MS: '2000' };
const PYTHON = '/usr/bin/python3';
const BLOCK = 4096;

/** fill: write blocks and flush; hold: stay connected, reading, until the server drops us (bounded). */
const CLIENT_PY = String.raw`import json, sys, time
import nbd

def fill(uri, offsets):
    h = nbd.NBD()
    h.connect_uri(uri)
    for offset in offsets.split(","):
        h.pwrite(b"\x5a" * 4096, int(offset))
    h.flush()
    h.shutdown()
    print(json.dumps({"filled": True}), flush=True)

def hold(uri):
    h = nbd.NBD()
    h.connect_uri(uri)
    print(json.dumps({"connected": True}), flush=True)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            h.pread(4096, 0)
        except nbd.Error as err:
            print(json.dumps({"dropped": True, "error": str(err)}), flush=True)
            return
        time.sleep(0.1)
    print(json.dumps({"dropped": False}), flush=True)

if __name__ == "__main__":
    {"fill": fill, "hold": hold}[sys.argv[1]](*sys.argv[2:])
`;

interface Client {
  readonly lines: Array<Record<string, unknown>>;
  readonly exited: Promise<number | null>;
}

async function startClient(t: TeardownHost, args: readonly string[]): Promise<Client> {
  const dir = await makeTempDir(t, 'plinth-lifecycle-client-');
  const script = join(dir, 'client.py');
  await writeFile(script, CLIENT_PY);
  const child = spawn(PYTHON, [script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const timer = setTimeout(() => child.kill('SIGKILL'), 45_000);
  t.teardown(() => {
    clearTimeout(timer);
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const lines: Array<Record<string, unknown>> = [];
  let buffered = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    const parts = buffered.split('\n');
    buffered = parts.pop() ?? '';
    for (const part of parts) if (part.trim() !== '') lines.push(JSON.parse(part) as Record<string, unknown>);
  });
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => {
    clearTimeout(timer);
    resolve(code);
  }));
  return { lines, exited };
}


async function startMember(t: TeardownHost, id: string, join?: DaemonProcess): Promise<DaemonProcess> {
  const args = ['--node-id', id, ...(join === undefined ? [] : ['--join', `127.0.0.1:${join.ports.peer}`])];
  return startDaemon(t, { args, env: ENV, logLevel: 'warn' });
}

/** A node's own used bytes: live pool stats when a node answers about itself (views.ts). */
async function ownUsedBytes(node: DaemonProcess, id: string): Promise<number> {
  const response = await node.api('GET', '/v1/nodes');
  const { nodes } = response.body as { nodes: Array<{ id: string; usedBytes: number }> };
  const self = nodes.find((candidate) => candidate.id === id);
  if (self === undefined) throw new Error(`node ${id} missing from its own node list`);
  return self.usedBytes;
}

async function createVolume(t: Test, via: DaemonProcess, name: string): Promise<void> {
  const created = await via.api('POST', '/v1/volumes', { name, size: '64MiB', replicas: 3 });
  t.equal(created.status, 201, `create ${name}: ${JSON.stringify(created.body)}`);
}

t.test('detach and rm from any node', async (t) => {
  const n1 = await startMember(t, 'n1');
  const n2 = await startMember(t, 'n2', n1);
  const n3 = await startMember(t, 'n3', n2);
  const members: Array<[DaemonProcess, string]> = [[n1, 'n1'], [n2, 'n2'], [n3, 'n3']];

  await t.test('detach on a non-owner drops the owner\'s NBD clients', async (t) => {
    await createVolume(t, n1, 'web');
    const client = await startClient(t, ['hold', n1.nbdUri('web')]);
    await eventually('the client to connect', 20_000, async () => (client.lines.length > 0 ? true : undefined));
    t.same(client.lines[0], { connected: true }, 'connected through n1');
    const owned = await n1.api('GET', '/v1/volumes/web');
    t.match(owned.body, { attachedTo: 'n1', connections: 1 }, 'attached to n1 with one client');

    const detached = await n2.api('POST', '/v1/volumes/web/detach', {});
    t.equal(detached.status, 200, `detach through n2: ${JSON.stringify(detached.body)}`);
    t.match(detached.body, { attachedTo: null }, 'the detach is committed');
    await client.exited;
    t.match(client.lines.at(-1), { dropped: true }, 'n1 dropped the client after the detach applied there');
    const after = await eventually('n1 to close the volume', 10_000, async () => {
      const view = await n1.api('GET', '/v1/volumes/web');
      return (view.body as { connections: number }).connections === 0 ? view.body : undefined;
    });
    t.match(after, { attachedTo: null, connections: 0 }, 'n1 serves it no more');
  });

  await t.test('rm on a non-owner after detach frees the extents on all three', async (t) => {
    const baseline = await Promise.all(members.map(([node, id]) => ownUsedBytes(node, id)));
    await createVolume(t, n1, 'db');
    // Blocks 4 MiB apart touch several extents whatever the extent size.
    const offsets = Array.from({ length: 8 }, (_, index) => index * 4 * 1024 * 1024 + BLOCK).join(',');
    const writer = await startClient(t, ['fill', n1.nbdUri('db'), offsets]);
    t.equal(await writer.exited, 0, 'the writer finished');
    t.same(writer.lines, [{ filled: true }], 'blocks written and flushed through n1');
    const written = await Promise.all(members.map(([node, id]) => ownUsedBytes(node, id)));
    members.forEach(([, id], index) => t.ok((written[index] ?? 0) > (baseline[index] ?? 0), `${id} holds data: ${baseline[index]} -> ${written[index]} bytes`));

    const refused = await n3.api('DELETE', '/v1/volumes/db');
    t.equal(refused.status, 409, 'rm is refused while the volume is attached');
    t.match(refused.body, { error: { code: 'VOLUME_ATTACHED' } });

    const detached = await n3.api('POST', '/v1/volumes/db/detach', {});
    t.equal(detached.status, 200, `detach through n3: ${JSON.stringify(detached.body)}`);
    const removed = await n3.api('DELETE', '/v1/volumes/db');
    t.equal(removed.status, 204, `rm through n3: ${JSON.stringify(removed.body)}`);

    for (const [index, [node, id]] of members.entries()) {
      const freed = await eventually(`${id} to free the volume's extents`, 30_000, async () => {
        const used = await ownUsedBytes(node, id);
        return used <= (baseline[index] ?? 0) ? used : undefined;
      }).catch(async (err: unknown) => {
        // What this node has applied, for the intermittent case where a replica holder never frees (closing note).
        const applied = await node.api('GET', '/v1/volumes').catch((apiErr: unknown) => ({ body: String(apiErr) }));
        t.comment(`${id} sees volumes: ${JSON.stringify(applied.body)}`);
        t.comment(node.describeOutput());
        throw err;
      });
      t.ok(freed <= (baseline[index] ?? 0), `${id} is back to ${freed} bytes used`);
    }
    const gone = await n1.api('GET', '/v1/volumes/db');
    t.equal(gone.status, 404, 'the volume is gone everywhere');
  });
});
