/**
 * Issue 4 "Delta resync" across an owner change: the dirty markers recorded
 * with a replica's committed fault let ANOTHER owner catch it up by copying
 * only what changed. Three real plinthd processes on 127.0.0.1:
 *   A. n3 down, writes through n1 (n3 faulted with markers), detach, attach
 *      on n2, more writes, n3 back: n2 rebuilds n3 by delta.
 *   B. n3 down, writes through n1, kill -9 n1, n3 back (two of three down
 *      would leave Raft without quorum), failover to n2, writes: n2 rebuilds
 *      n3 by delta from the markers n1 committed; n1 back (faulted at the
 *      takeover with n2's markers): rebuilt by delta too.
 * Each ends with the replicas compared byte for byte: the test reads every
 * replica directly over its node's peer port (a single-replica path) with
 * the volume's committed generation and compares SHA-256 digests.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import pino from 'pino';
import t, { type Test } from 'tap';
import { RemoteReplica } from '../../blockdev/replica/remote-replica.js';
import { startDaemon, type DaemonProcess } from '../helpers/daemon-harness.js';
import { ENV, eventually, runClient, startMember, writeClient } from './fixtures/replication-cluster.js';

const MiB = 1024 * 1024;
const VOLUME_BYTES = 128 * MiB;
const BLOCK = 4096;
/** Region-granular delta: the written 4 MiB regions plus a few of the replica's own unflushed ones — never the volume. */
const DELTA_LIMIT_BYTES = 24 * MiB;
const PREFIX = 'plinth-resync-oc-';

interface VolumeBody {
  readonly id: string;
  readonly generation: number;
  readonly state: string;
  readonly attachedTo: string | null;
  readonly replicas: ReadonlyArray<{ nodeId: string; state: string; rebuild?: { copiedBytes: number; totalBytes: number; done: boolean } }>;
}

/** `count` block offsets 64 KiB apart from `startBytes`, as the client's comma list. */
function offsets(startBytes: number, count: number): string {
  return Array.from({ length: count }, (_, index) => startBytes + index * 16 * BLOCK).join(',');
}

async function inspect(t: Test, via: DaemonProcess, name: string): Promise<VolumeBody> {
  const view = await via.api('GET', `/v1/volumes/${name}`);
  t.equal(view.status, 200, `inspect ${name}: ${JSON.stringify(view.body)}`);
  return view.body as VolumeBody;
}

async function fill(t: Test, script: string, via: DaemonProcess, name: string, byte: number, list: string, what: string): Promise<void> {
  const lines = await runClient(script, ['fill', via.nbdUri(name), String(byte), list], 30_000);
  t.same(lines.at(-1), { filled: true }, what);
}

/** Wait until the volume is healthy on `owner` and return n3's (or `nodeId`'s) finished rebuild progress. */
async function rebuiltDelta(t: Test, owner: DaemonProcess, name: string, nodeId: string): Promise<{ copiedBytes: number; totalBytes: number }> {
  const rebuild = await eventually(`${nodeId} rebuilt by ${owner.ports.api}`, 45_000, async () => {
    const view = (await owner.api('GET', `/v1/volumes/${name}`)).body as VolumeBody;
    const record = view.replicas.find((replica) => replica.nodeId === nodeId)?.rebuild;
    return view.state === 'healthy' && record?.done === true ? record : undefined;
  });
  t.ok(rebuild.totalBytes > 0 && rebuild.totalBytes <= DELTA_LIMIT_BYTES, `${nodeId}: the rebuild covered ${rebuild.totalBytes} of ${VOLUME_BYTES} bytes (delta, not a full copy)`);
  t.comment(`${name}: ${nodeId} rebuilt by delta: ${rebuild.copiedBytes} of ${rebuild.totalBytes} bytes (volume ${VOLUME_BYTES})`);
  return rebuild;
}

/** SHA-256 of one replica's whole volume, read over the node's peer port with the committed generation (no fence raised). */
async function replicaDigest(member: DaemonProcess, volume: VolumeBody): Promise<string> {
  const secret = Buffer.from((await readFile(join(member.dataDir, 'cluster-secret'), 'utf8')).trim(), 'hex');
  const device = new RemoteReplica(
    { host: '127.0.0.1', port: member.ports.peer, nodeId: 'test-reader', secret, volumeId: volume.id, sizeBytes: VOLUME_BYTES, generation: volume.generation, connections: 1, requestTimeoutMs: 10_000 },
    { logger: pino({ level: 'silent' }) },
  );
  try {
    await device.connect();
    const hash = createHash('sha256');
    const chunk = Buffer.alloc(MiB);
    for (let offset = 0; offset < VOLUME_BYTES; offset += MiB) {
      await device.read(offset, chunk);
      hash.update(chunk);
    }
    return hash.digest('hex');
  } finally {
    device.close();
  }
}

/** Detach (no writer any more), then every replica must hold the same bytes. */
async function compareReplicas(t: Test, via: DaemonProcess, members: readonly DaemonProcess[], name: string): Promise<void> {
  const detached = await via.api('POST', `/v1/volumes/${name}/detach`, {});
  t.equal(detached.status, 200, `detach ${name}: ${JSON.stringify(detached.body)}`);
  const volume = await inspect(t, via, name);
  const digests = [];
  for (const member of members) digests.push(await replicaDigest(member, volume));
  t.equal(new Set(digests).size, 1, `${name}: the three replicas are identical byte for byte (${digests.map((digest) => digest.slice(0, 12)).join(' ')})`);
}

async function restart(t: TeardownLike, member: DaemonProcess, id: string): Promise<DaemonProcess> {
  return startDaemon(t, { dataDir: member.dataDir, ports: member.ports, args: ['--node-id', id], env: ENV, logLevel: 'warn' });
}

type TeardownLike = Parameters<typeof startDaemon>[0];

t.test('a faulted replica is caught up by delta after the owner changed', async (t) => {
  const script = await writeClient(t);
  // Own data-dir prefix: this file's daemons can be told apart from everyone else's.
  const n1 = await startMember(t, 'n1', undefined, 'warn', PREFIX);
  const n2 = await startMember(t, 'n2', n1, 'warn', PREFIX);
  let n3 = await startMember(t, 'n3', n2, 'warn', PREFIX);

  await t.test('A: detach from n1, attach on n2', async (t) => {
    const created = await n1.api('POST', '/v1/volumes', { name: 'alpha', size: '128MiB', replicas: 3 });
    t.equal(created.status, 201, `create: ${JSON.stringify(created.body)}`);
    await fill(t, script, n1, 'alpha', 1, offsets(0, 16), 'written on all three');
    await n3.kill();
    await fill(t, script, n1, 'alpha', 2, offsets(40 * MiB, 16), 'writes go on without n3');
    const degraded = await inspect(t, n1, 'alpha');
    t.match(degraded.replicas, [{ nodeId: 'n1', state: 'in-sync' }, { nodeId: 'n2', state: 'in-sync' }, { nodeId: 'n3', state: 'faulted' }], 'n3 faulted (committed)');

    t.equal((await n1.api('POST', '/v1/volumes/alpha/detach', {})).status, 200, 'detached from n1');
    const attached = await n2.api('POST', '/v1/volumes/alpha/attach', { node: 'n2' });
    t.equal(attached.status, 200, `attached on n2: ${JSON.stringify(attached.body)}`);
    await fill(t, script, n2, 'alpha', 3, offsets(80 * MiB, 16), 'the new owner writes while n3 is still out');

    n3 = await restart(t, n3, 'n3');
    await rebuiltDelta(t, n2, 'alpha', 'n3');
    await compareReplicas(t, n2, [n1, n2, n3], 'alpha');
  });

  await t.test('B: kill -9 the owner, fail over to n2', async (t) => {
    const created = await n1.api('POST', '/v1/volumes', { name: 'beta', size: '128MiB', replicas: 3 });
    t.equal(created.status, 201, `create: ${JSON.stringify(created.body)}`);
    await fill(t, script, n1, 'beta', 1, offsets(0, 16), 'written on all three');
    await n3.kill();
    await fill(t, script, n1, 'beta', 2, offsets(40 * MiB, 16), 'writes go on without n3');
    t.match((await inspect(t, n1, 'beta')).replicas, [{ nodeId: 'n1', state: 'in-sync' }, { nodeId: 'n2', state: 'in-sync' }, { nodeId: 'n3', state: 'faulted' }], 'n3 faulted by n1 (committed)');
    await n1.kill();
    // n3 comes back first: with n1 and n3 both down Raft has no quorum and nothing could fail over.
    // n1 is dead, so only the new owner can rebuild n3, from the markers n1 committed with its fault.
    n3 = await restart(t, n3, 'n3');
    // Connecting to n2 takes the volume over once n1 is seen down; n1's in-sync replica is faulted at the takeover.
    await eventually('n2 to take the volume over', 40_000, async () => {
      const lines = await runClient(script, ['fill', n2.nbdUri('beta'), '3', offsets(80 * MiB, 16)], 30_000);
      return lines.at(-1)?.['filled'] === true ? true : undefined;
    });
    const view = await inspect(t, n2, 'beta');
    t.match(view, { attachedTo: 'n2' }, 'n2 took the volume over');
    t.match(view.replicas, [{ nodeId: 'n1', state: 'faulted' }, { nodeId: 'n2', state: 'in-sync' }], 'n1 faulted at the takeover');

    const n1Again = await restart(t, n1, 'n1');
    await rebuiltDelta(t, n2, 'beta', 'n3');
    await rebuiltDelta(t, n2, 'beta', 'n1');
    await compareReplicas(t, n2, [n1Again, n2, n3], 'beta');
  });
});
