/**
 * Issue 7 "show it": the data-generation case. DRBD's
 * `quorate-data-divergence`: the replicas holding the newest data go away, a
 * stale one returns, and the surviving voters are a majority — votes alone
 * would promote the stale replica. Plinth must not (daemon/state/
 * data-generations.ts, docs/data-path.md "Data generations").
 *
 * Five real plinthd processes on 127.0.0.1 (Raft keeps a majority with two
 * gone); volume dg with replicas on n1, n2, n3, owner n1:
 *   1. version A everywhere; kill -9 n3 → n3 committed faulted;
 *   2. version B through n1 (acknowledged by n1 and n2 only);
 *   3. kill -9 n1 and n2, restart n3: attach on n4 fails with
 *      NO_CURRENT_REPLICA and no NBD connection anywhere reads A;
 *   4. restart n2: the attach succeeds, every block reads B, and n3 is
 *      rebuilt (in-sync again, holding B).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import pino from 'pino';
import t, { type Test } from 'tap';
import { RemoteReplica } from '../../blockdev/replica/remote-replica.js';
import { startDaemon, type DaemonProcess } from '../helpers/daemon-harness.js';
import { ENV, eventually, runClient, startMember, writeClient } from './fixtures/replication-cluster.js';

const PREFIX = 'plinth-datagen-';
const BLOCK = 4096;
const VERSION_A = 0xa1;
const VERSION_B = 0xb2;
/** 16 blocks spread over the 64 MiB volume. */
const OFFSETS = Array.from({ length: 16 }, (_, index) => index * 4 * 1024 * 1024 + index * BLOCK);
const OFFSET_LIST = OFFSETS.join(',');

interface VolumeBody {
  readonly id: string;
  readonly sizeBytes: number;
  readonly generation: number;
  readonly attachedTo: string | null;
  readonly replicas: ReadonlyArray<{ readonly nodeId: string; readonly state: string }>;
}

interface ErrorBody {
  readonly error: { readonly code: string; readonly message: string; readonly details?: Record<string, unknown> };
}

function isErrorBody(body: unknown): body is ErrorBody {
  return typeof body === 'object' && body !== null && 'error' in body;
}

async function inspect(via: DaemonProcess): Promise<VolumeBody> {
  const view = await via.api('GET', '/v1/volumes/dg');
  if (view.status !== 200) throw new Error(`inspect dg: ${view.status} ${JSON.stringify(view.body)}`);
  return view.body as VolumeBody;
}

function replicaStates(volume: VolumeBody): Record<string, string> {
  return Object.fromEntries(volume.replicas.map((replica) => [replica.nodeId, replica.state]));
}

async function restart(t: Test, member: DaemonProcess, id: string): Promise<DaemonProcess> {
  return startDaemon(t, { dataDir: member.dataDir, ports: member.ports, args: ['--node-id', id], env: ENV, logLevel: 'warn' });
}

/** Wait until `via` sees every node of `ids` committed down. */
async function committedDown(via: DaemonProcess, ids: readonly string[]): Promise<void> {
  await eventually(`${ids.join(', ')} committed down`, 20_000, async () => {
    const { nodes } = (await via.api('GET', '/v1/nodes')).body as { nodes: ReadonlyArray<{ id: string; state: string }> };
    return ids.every((id) => nodes.find((node) => node.id === id)?.state === 'down') ? true : undefined;
  });
}

/** The test's own read of one replica over its node's peer port, with the committed generation. */
async function replicaBlocks(member: DaemonProcess, volume: VolumeBody): Promise<number[]> {
  const secret = Buffer.from((await readFile(join(member.dataDir, 'cluster-secret'), 'utf8')).trim(), 'hex');
  const device = new RemoteReplica(
    { host: '127.0.0.1', port: member.ports.peer, nodeId: 'test-reader', secret, volumeId: volume.id, sizeBytes: volume.sizeBytes, generation: volume.generation, connections: 1, requestTimeoutMs: 10_000 },
    { logger: pino({ level: 'silent' }) },
  );
  try {
    await device.connect();
    const firstBytes: number[] = [];
    for (const offset of OFFSETS) {
      const block = Buffer.alloc(BLOCK);
      await device.read(offset, block);
      firstBytes.push(block.every((byte) => byte === block[0]) ? (block[0] ?? -1) : -1);
    }
    return firstBytes;
  } finally {
    device.close();
  }
}

t.test('a stale replica is never promoted, even with a Raft majority to spare', async (t) => {
  const script = await writeClient(t);
  // The volume is created while n1..n3 are the only members, so its replicas land there.
  const n1 = await startMember(t, 'n1', undefined, 'warn', PREFIX);
  const n2 = await startMember(t, 'n2', n1, 'warn', PREFIX);
  const n3 = await startMember(t, 'n3', n2, 'warn', PREFIX);
  const created = await n1.api('POST', '/v1/volumes', { name: 'dg', size: '64MiB', replicas: 3 });
  t.equal(created.status, 201, `create: ${JSON.stringify(created.body)}`);
  const n4 = await startMember(t, 'n4', n1, 'warn', PREFIX);
  const n5 = await startMember(t, 'n5', n1, 'warn', PREFIX);

  // 1. Version A on all three; n3 dies and is committed out of the in-sync set.
  t.same(await runClient(script, ['fill', n1.nbdUri('dg'), String(VERSION_A), OFFSET_LIST], 30_000), [{ filled: true }], 'version A written through n1');
  await n3.kill();
  // 2. Version B, acknowledged (flushed) by n1 and n2 only: the fault committed before the ack (invariant 2).
  t.same(await runClient(script, ['fill', n1.nbdUri('dg'), String(VERSION_B), OFFSET_LIST], 30_000), [{ filled: true }], 'version B acknowledged through n1');
  const afterB = await inspect(n1);
  t.same(replicaStates(afterB), { n1: 'in-sync', n2: 'in-sync', n3: 'faulted' }, 'n3 is faulted in the committed state');
  t.equal(afterB.attachedTo, 'n1');

  // 3. The holders of B die; the stale n3 returns. n3, n4, n5 are a Raft majority.
  await n1.kill();
  await n2.kill();
  const n3Back = await restart(t, n3, 'n3');
  await committedDown(n4, ['n1', 'n2']);
  const refusal = await eventually('a definite answer to the attach on n4', 20_000, async () => {
    const answer = await n4.api('POST', '/v1/volumes/dg/attach', { node: 'n4' });
    // Only a lost leadership is worth a retry; every other answer is the verdict.
    if (isErrorBody(answer.body) && ['NOT_LEADER', 'TIMEOUT'].includes(answer.body.error.code)) return undefined;
    return answer;
  });
  t.not(refusal.status, 200, 'the attach on n4 is refused');
  t.match(refusal.body, {
    error: {
      code: 'NO_CURRENT_REPLICA',
      message: /volume dg: its current data is on n1, n2 \(data generation \d+\), none .*; the replica on n3 \(faulted at data generation \d+\) is stale and never served/,
      details: { current: ['n1', 'n2'], stale: [{ nodeId: 'n3', state: 'faulted' }] },
    },
  }, 'with the clear error');
  t.comment(`refusal: ${isErrorBody(refusal.body) ? refusal.body.error.message : JSON.stringify(refusal.body)}`);
  for (const [id, member] of [['n3', n3Back], ['n4', n4], ['n5', n5]] as const) {
    const read = await runClient(script, ['check', member.nbdUri('dg'), String(VERSION_A), OFFSET_LIST], 30_000).then(
      (lines) => lines,
      (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
    );
    t.ok(read instanceof Error, `an NBD client on ${id} cannot connect, so it reads nothing (${read instanceof Error ? read.message.split('\n')[0]?.slice(0, 160) : JSON.stringify(read)})`);
  }
  const stillOut = await inspect(n4);
  t.equal(stillOut.replicas.find((replica) => replica.nodeId === 'n3')?.state, 'faulted', 'n3 stays faulted');
  t.not(stillOut.attachedTo, 'n3', 'never owned by the stale replica’s node');

  // 4. A holder of B returns: the attach succeeds from it, and n3 is rebuilt.
  const n2Back = await restart(t, n2, 'n2');
  const attached = await eventually('the attach on n4 once n2 is back', 30_000, async () => {
    const answer = await n4.api('POST', '/v1/volumes/dg/attach', { node: 'n4' });
    return answer.status === 200 ? answer : undefined;
  });
  t.match(attached.body, { attachedTo: 'n4' }, 'attached on n4');
  const check = await runClient(script, ['check', n4.nbdUri('dg'), String(VERSION_B), OFFSET_LIST], 30_000);
  t.same(check, [{ wrong: [] }], 'every block reads version B through n4');
  const healed = await eventually('n3 rebuilt in-sync', 40_000, async () => {
    const view = await inspect(n4);
    return replicaStates(view)['n3'] === 'in-sync' && replicaStates(view)['n2'] === 'in-sync' ? view : undefined;
  });
  t.equal(replicaStates(healed)['n1'], 'faulted', 'n1, still away, was committed out at the takeover');
  t.same(await replicaBlocks(n3Back, healed), OFFSETS.map(() => VERSION_B), 'n3 now holds version B on every block');
  t.same(await replicaBlocks(n2Back, healed), OFFSETS.map(() => VERSION_B), 'and so does n2');
});
