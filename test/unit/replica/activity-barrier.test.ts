/**
 * Issue 7, "a disk that stalls" (test/integration/disk-fault-disk-stall.test.ts):
 * a write stuck in a stalled pool write must not land after a rebuild by
 * the same owner (same generation: the fence does not hold it back) copied
 * a newer version of its block. replica-service.ts: GET_ACTIVITY, the
 * rebuild's first request, is answered only after every request of the
 * volume admitted before it has settled.
 *
 * The stall is the `disk.write` failpoint with a sleep this test releases
 * itself (useFailpointEffects), so nothing waits on a wall-clock timer.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import t, { type Test } from 'tap';
import { failpoints, processEffects, useFailpointEffects } from '../../../common/failpoints/failpoints.js';
import { connectReplica, makeTempDir, MiB, pattern, startReplicaNode, VOLUME_BYTES } from './replica-fixture.js';

const BLOCK = 4096;
const OFFSET = 3 * MiB;

interface ControlledStall {
  /** Ends every stall so far (and later ones at once). */
  readonly release: () => void;
  /** Ends the oldest stall still held. */
  readonly releaseNext: () => void;
  /** Resolves once `count` stalls have begun. */
  readonly entered: (count?: number) => Promise<void>;
}

/** Stalls that last until released (or their own bound, so a broken test never hangs). */
function controlledStall(t: Test): ControlledStall {
  const held: Array<() => void> = [];
  const waiters: Array<{ count: number; resolve: () => void }> = [];
  let begun = 0;
  let releasedAll = false;
  const restore = useFailpointEffects({
    ...processEffects,
    sleep: async (durationMs) => {
      begun += 1;
      for (const waiter of waiters.filter((candidate) => candidate.count <= begun)) waiter.resolve();
      if (releasedAll) return;
      const released = new Promise<void>((resolve) => held.push(resolve));
      await Promise.race([released, sleep(durationMs, undefined, { ref: false })]);
    },
  });
  const release = (): void => {
    releasedAll = true;
    for (const resolve of held.splice(0)) resolve();
  };
  t.teardown(() => {
    release();
    restore();
    failpoints.disarmAll();
  });
  return {
    release,
    releaseNext: () => held.shift()?.(),
    entered: (count = 1) => (begun >= count ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ count, resolve }))),
  };
}

t.test('the rebuild\'s GET_ACTIVITY waits for a write stuck in a stalled disk, so the copy lands last', async (t) => {
  const node = await startReplicaNode(t, await makeTempDir(t));
  // Two links, as an owner has: the stuck write and the rebuild's requests need not share one.
  const owner = await connectReplica(t, node.server, { connections: 2, requestTimeoutMs: 20_000 });
  await owner.write(OFFSET, pattern(BLOCK, 1), { fua: true }); // the extent is mapped; version 1 is on disk

  const stall = controlledStall(t);
  failpoints.armFromText('disk.write=stall(15000):times=1');
  const stuck = owner.write(OFFSET, pattern(BLOCK, 2)); // version 2, acknowledged to the client by the others
  await stall.entered();

  // The disk comes back on its own a little later, whatever the replica does meanwhile.
  let stallEnded = false;
  const stallEnds = setTimeout(() => {
    stallEnded = true;
    stall.release();
  }, 300);
  t.teardown(() => clearTimeout(stallEnds));

  // The owner faulted this replica meanwhile; its rebuild asks for the activity first (same generation)…
  const answer = await owner.getActivity(0, VOLUME_BYTES);
  t.ok(stallEnded, 'GET_ACTIVITY was answered only after the stuck write could settle');
  t.ok(answer.regions.includes(Math.floor(OFFSET / answer.regionSizeBytes)), 'the stuck write\'s region is in the activity answer');
  // …then the catch-up copies the newest version (3) of the block.
  await owner.write(OFFSET, pattern(BLOCK, 3));
  await stuck;
  const back = Buffer.alloc(BLOCK);
  await owner.read(OFFSET, back);
  t.ok(back.equals(pattern(BLOCK, 3)), 'the replica holds the version the rebuild copied, not the stale stuck one');
});

t.test('the barrier waits only for what came before it, and the local API waits too', async (t) => {
  const node = await startReplicaNode(t, await makeTempDir(t));
  const owner = await connectReplica(t, node.server, { requestTimeoutMs: 20_000 });
  await owner.write(0, pattern(BLOCK, 1), { fua: true });
  t.same((await owner.getActivity(0, VOLUME_BYTES)).complete, true, 'with nothing in flight it answers at once');

  const stall = controlledStall(t);
  failpoints.armFromText('disk.write=stall(15000):times=1');
  const stuck = owner.write(0, pattern(BLOCK, 2));
  await stall.entered();
  const local = node.server.service.activeRegions('vol-1', 0, VOLUME_BYTES);
  const remote = owner.getActivity(0, VOLUME_BYTES);
  // Live requests admitted after the questions still run (the barrier holds only the question).
  await owner.write(2 * MiB, pattern(BLOCK, 5));
  t.pass('a later write completes while the questions wait');
  const early = await Promise.race([Promise.all([local, remote]).then(() => 'answered' as const), sleep(300).then(() => 'waiting' as const)]);
  t.equal(early, 'waiting', 'neither question is answered while the earlier write is stuck');
  stall.release();
  const [localAnswer, remoteAnswer] = await Promise.all([local, remote]);
  t.same(localAnswer.regions, remoteAnswer.regions, 'the local API and GET_ACTIVITY agree');
  await stuck;
});

t.test('a timed-out write takes its link down: requests queued behind it never start after the barrier', async (t) => {
  // One request at a time per connection: the second write waits in the connection's queue.
  const node = await startReplicaNode(t, await makeTempDir(t), { limits: { maxInFlightRequests: 1 } });
  const stale = await connectReplica(t, node.server, { connections: 1, requestTimeoutMs: 300, reconnectBaseDelayMs: 20, reconnectMaxDelayMs: 50 });
  await stale.write(0, pattern(BLOCK, 1), { fua: true });
  await stale.write(OFFSET, pattern(BLOCK, 1), { fua: true });

  const stall = controlledStall(t);
  failpoints.armFromText('disk.write=stall(15000):times=2');
  const stuck = stale.write(0, pattern(BLOCK, 2));
  await stall.entered();
  const queued = stale.write(OFFSET, pattern(BLOCK, 2)); // sent before the fault, not started by the replica
  await t.rejects(stuck, { code: 'TIMEOUT' }, 'the owner gives up on the stuck write');
  const queuedError = await queued.then(() => undefined, (error: unknown) => error);
  t.match(queuedError, { code: /^(TIMEOUT|IO_ERROR)$/ }, 'and on the one queued behind it (its link went down)');

  // The rebuild (another link of the same owner and generation): barrier, then the copy of the newest version.
  const rebuilder = await connectReplica(t, node.server, { requestTimeoutMs: 5000 });
  const activity = rebuilder.getActivity(0, VOLUME_BYTES);
  await sleep(50);
  stall.releaseNext(); // the stuck write lands; the barrier answers
  await activity;
  // Without the link going down, the queued write starts once the stuck one settled and stalls too: give it the chance.
  await Promise.race([stall.entered(2), sleep(500)]);
  failpoints.disarmAll(); // the copy itself must not stall
  await rebuilder.write(OFFSET, pattern(BLOCK, 3));
  stall.release(); // a queued write that had started after all would land now
  await rebuilder.getActivity(0, VOLUME_BYTES); // and be settled by this second barrier
  const back = Buffer.alloc(BLOCK);
  await rebuilder.read(OFFSET, back);
  t.ok(back.equals(pattern(BLOCK, 3)), 'the block holds the copied version, not the write that was queued before the fault');
});
