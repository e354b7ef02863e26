import t from 'tap';
import type { VolumeSession } from '../../../daemon/volume/volume-session.js';
import { pattern } from '../replica/replica-fixture.js';
import { SESSION_VOLUME_BYTES, startSessionCluster, type SessionCluster } from './session-fixture.js';

/**
 * A data-locality move seen from the owner's session (issue 4 "data
 * locality"; ARCHITECTURE invariants: a client never sees EIO because the
 * cluster moves a replica): a 2-replica volume on n1,n2 attached on n3, a
 * replica added on n3, rebuilt, committed in-sync, then n1 retired — all
 * while clients write and flush. Steps are driven the way
 * session-replica-sync.ts and the rebuild reconciler drive them, against the
 * FakeCluster's committed state.
 */

const KiB = 1024;
const BLOCK_BYTES = 4 * KiB;
const BLOCKS = 256;
const WORKERS = 4;
/** Past MarkerRefresh's default 1000 ms interval, so flushes ask the new replica for a marker. */
const LOAD_AFTER_JOIN_MS = 1500;
const LOAD_LIMIT_MS = 20_000;

interface Load {
  readonly errors: Error[];
  /** Block index → seed of the last acknowledged write. */
  readonly written: Map<number, number>;
  stop(): Promise<void>;
  ops(): number;
}

/** Writes then flushes from a few concurrent clients until stopped (bounded by LOAD_LIMIT_MS). */
function startLoad(session: VolumeSession): Load {
  const errors: Error[] = [];
  const written = new Map<number, number>();
  const deadlineMs = Date.now() + LOAD_LIMIT_MS;
  let stopped = false;
  let seed = 1;
  let ops = 0;
  const worker = async (workerIndex: number): Promise<void> => {
    let step = 0;
    while (!stopped && Date.now() < deadlineMs) {
      // Each worker owns its own blocks, so the last acknowledged write of a block is well defined.
      const block = (step * WORKERS + workerIndex) % BLOCKS;
      step += 1;
      const blockSeed = seed;
      seed += 1;
      try {
        await session.device.write(block * BLOCK_BYTES, pattern(BLOCK_BYTES, blockSeed));
        written.set(block, blockSeed);
        await session.device.flush();
        ops += 2;
      } catch (error) {
        errors.push(error instanceof Error ? error : new Error(String(error)));
        return;
      }
    }
  };
  const running = Promise.all(Array.from({ length: WORKERS }, (_, index) => worker(index)));
  return {
    errors,
    written,
    stop: async () => {
      stopped = true;
      await running;
    },
    ops: () => ops,
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** replica.add committed by the locality reconciler: the new replica starts rebuilding. */
function commitAdd(env: SessionCluster, nodeId: string): void {
  const placement = env.cluster.placement;
  env.cluster.placement = { ...placement, replicas: [...placement.replicas, { nodeId, state: 'rebuilding' }] };
}

/** replica.remove committed for the retiree. */
function commitRemove(env: SessionCluster, nodeId: string): void {
  const placement = env.cluster.placement;
  env.cluster.placement = { ...placement, replicas: placement.replicas.filter((replica) => replica.nodeId !== nodeId) };
}

t.test('moving a replica to the attach node never fails a client write or flush', async (t) => {
  const env = await startSessionCluster(t);
  commitRemove(env, 'n3');
  const session = await env.open('n3');
  t.same(session.replicaStatuses().map((status) => status.nodeId).sort(), ['n1', 'n2'], 'served from n1,n2 only');
  const load = startLoad(session);
  t.teardown(() => load.stop());
  await sleep(200);

  commitAdd(env, 'n3');
  await session.addReplica('n3');
  const rebuilt = await session.rebuild('n3').then(
    () => undefined,
    (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
  );
  t.equal(rebuilt, undefined, `the rebuild onto n3 completes: ${String(rebuilt?.message)}`);
  t.equal(env.cluster.stateOf('n3'), 'in-sync', 'n3 committed in-sync');
  await sleep(LOAD_AFTER_JOIN_MS);

  commitRemove(env, 'n1');
  session.removeReplica('n1');
  await sleep(LOAD_AFTER_JOIN_MS);
  await load.stop();

  t.same(load.errors.map((error) => error.message), [], 'no client command failed during the move');
  t.ok(load.ops() > 50, `the clients kept going (${load.ops()} commands)`);
  t.notOk(session.stopped, 'the volume still serves');
  t.same(session.replicaStatuses().map((status) => `${status.nodeId}:${status.state}`).sort(), ['n2:in-sync', 'n3:in-sync']);
  t.same(
    env.cluster.placement.replicas.map((replica) => `${replica.nodeId}:${replica.state}`).sort(),
    ['n2:in-sync', 'n3:in-sync'],
    'nothing faulted in the committed state',
  );

  // Every acknowledged write reads back through the volume and from n3's own copy.
  const store = await env.nodes.get('n3')?.pool.openVolume(env.cluster.placement.volumeId, SESSION_VOLUME_BYTES);
  let mismatches = 0;
  for (const [block, blockSeed] of load.written) {
    const expected = pattern(BLOCK_BYTES, blockSeed);
    const viaVolume = Buffer.alloc(BLOCK_BYTES);
    await session.device.read(block * BLOCK_BYTES, viaVolume);
    const onN3 = Buffer.alloc(BLOCK_BYTES);
    await store?.read(block * BLOCK_BYTES, onN3);
    if (!viaVolume.equals(expected) || !onN3.equals(expected)) mismatches += 1;
  }
  t.equal(mismatches, 0, `all ${load.written.size} written blocks read back`);
});

t.test('retiring a replica with writes in flight to it neither fails them nor suspends the volume', async (t) => {
  const env = await startSessionCluster(t);
  const session = await env.open('n1');
  // Uncontended writes are sent to every replica before write() returns: these are in flight to n3 now.
  const writes = Array.from({ length: 8 }, (_, index) => session.device.write(index * BLOCK_BYTES, pattern(BLOCK_BYTES, 100 + index)));
  commitRemove(env, 'n3');
  session.removeReplica('n3');
  const outcomes = await Promise.allSettled(writes);
  t.same(
    outcomes.flatMap((outcome) => (outcome.status === 'rejected' ? [String(outcome.reason)] : [])),
    [],
    'every write in flight to the retiree completed',
  );
  await session.device.flush();
  t.notOk(session.stopped, 'the volume still serves');
  t.same(env.cluster.placement.replicas.map((replica) => `${replica.nodeId}:${replica.state}`).sort(), ['n1:in-sync', 'n2:in-sync']);
  for (let index = 0; index < 8; index += 1) {
    const target = Buffer.alloc(BLOCK_BYTES);
    await session.device.read(index * BLOCK_BYTES, target);
    t.ok(target.equals(pattern(BLOCK_BYTES, 100 + index)), `block ${index} reads back`);
  }
});
