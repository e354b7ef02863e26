import t, { type Test } from 'tap';
import { catchUpReplica } from '../../../blockdev/volume/catch-up.js';
import { RangeLock } from '../../../blockdev/volume/range-lock.js';
import { ScriptedReplica, ioError } from './helpers/scripted-replica.js';
import { filled, makeVolume, readStore, VOLUME_BYTES } from './helpers/volume-fixture.js';

async function sameContents(t: Test, a: ScriptedReplica, b: ScriptedReplica, message: string): Promise<void> {
  t.same(await readStore(a, 0, VOLUME_BYTES), await readStore(b, 0, VOLUME_BYTES), message);
}

t.test('catchUpReplica copies data, zeroes holes and reports progress', async (t) => {
  const source = new ScriptedReplica({ sizeBytes: 64 * 1024, chunkBytes: 4096 });
  const target = new ScriptedReplica({ sizeBytes: 64 * 1024, chunkBytes: 4096 });
  await source.store.write(8192, filled(4096, 3));
  await target.store.write(0, filled(4096, 9)); // stale data where the source has a hole
  const seen: number[] = [];
  const progress = await catchUpReplica(source, target, 'all', {
    rangeLock: new RangeLock(),
    chunkBytes: 16 * 1024,
    onProgress: (current) => seen.push(current.doneBytes),
  });
  t.equal(progress.totalBytes, 64 * 1024);
  t.equal(progress.copiedBytes, 4096, 'only the allocated block is copied');
  t.equal(progress.zeroedBytes, 60 * 1024);
  t.same(seen.length, 4);
  t.same(await readStore(target, 0, 64 * 1024), await readStore(source, 0, 64 * 1024));
  await t.rejects(
    catchUpReplica(source, target, 'all', { rangeLock: new RangeLock(), chunkBytes: 0 }),
    { code: 'INVALID_ARGUMENT' },
  );
});

t.test('catch-up stops at the first failing chunk and leaves nothing in flight', async (t) => {
  const source = new ScriptedReplica({ sizeBytes: 64 * 1024 });
  const target = new ScriptedReplica({ sizeBytes: 64 * 1024 });
  await source.store.write(0, filled(64 * 1024, 1));
  target.failNthMutation(2);
  await t.rejects(
    catchUpReplica(source, target, [{ offset: 0, lengthBytes: 64 * 1024 }], {
      rangeLock: new RangeLock(),
      chunkBytes: 4096,
      maxParallelChunks: 2,
    }),
    { code: 'IO_ERROR' },
  );
  t.ok((target.calls.write ?? 0) <= 3, 'workers stop after the failure');
});

t.test('a faulted replica rebuilds while live writes continue, then is committed in-sync', async (t) => {
  const { volume, replicas, control } = makeVolume({ faultedIndexes: [2] });
  const [r0, , r2] = replicas;
  if (r0 === undefined || r2 === undefined) throw new Error('fixture');
  for (let block = 0; block < 16; block += 1) await volume.write(block * 8192, filled(4096, block + 1));
  t.equal(r2.calls.write, 0, 'a faulted replica gets no writes');
  // Hold the source so live writes are issued while the copy is in progress.
  r0.hold();
  const rebuilding = volume.rebuildReplica('r2', { chunkBytes: 32 * 1024, maxParallelChunks: 2 });
  for (let round = 0; round < 20; round += 1) await Promise.resolve();
  t.equal(volume.replicaStatuses()[2]?.state, 'rebuilding');
  const live = [volume.write(0, filled(100, 200)), volume.write(512 * 1024, filled(100, 201))];
  r0.release();
  await Promise.all(live);
  const progress = await rebuilding;
  t.equal(progress.totalBytes, VOLUME_BYTES, "a replica that arrived faulted copies everything ('all')");
  t.same(control.joins, ['r2']);
  t.equal(volume.replicaStatuses()[2]?.state, 'in-sync');
  await sameContents(t, r0, r2, 'the rebuilt replica equals the source');
});

t.test('delta resync copies only the regions the replica missed', async (t) => {
  const { volume, replicas, control } = makeVolume();
  const [r0, r1] = replicas;
  if (r0 === undefined || r1 === undefined) throw new Error('fixture');
  await volume.write(0, filled(VOLUME_BYTES, 1));
  r1.failFromNow();
  await volume.write(4096, filled(100, 2));
  await volume.write(65536, filled(4096, 3));
  t.same(control.reports, ['r1']);
  r1.heal();
  const progress = await volume.rebuildReplica('r1');
  t.equal(progress.totalBytes, 100 + 4096, 'only the dirty bytes');
  await sameContents(t, r0, r1, 'delta resync made the replica identical');
  t.same(volume.dirtyRegions('r1'), []);
});

t.test('a target that fails during rebuild goes back to faulted and keeps its dirty regions', async (t) => {
  const { volume, replicas } = makeVolume({ faultedIndexes: [1] });
  const r1 = replicas[1];
  if (r1 === undefined) throw new Error('fixture');
  r1.failFromNow(ioError('target down'), ['write', 'writeZeroes']);
  await t.rejects(volume.rebuildReplica('r1', { chunkBytes: 64 * 1024 }), { code: 'IO_ERROR' });
  t.equal(volume.replicaStatuses()[1]?.state, 'faulted');
  t.equal(volume.dirtyRegions('r1'), 'all');
  r1.heal();
  await volume.rebuildReplica('r1', { chunkBytes: 64 * 1024 });
  t.equal(volume.replicaStatuses()[1]?.state, 'in-sync');
});

t.test('markInSync that cannot commit leaves the replica rebuilding; a retry commits it', async (t) => {
  const { volume, control } = makeVolume({ faultedIndexes: [1] });
  control.rejectJoins = new Error('no quorum');
  await t.rejects(volume.rebuildReplica('r1', { chunkBytes: 256 * 1024 }), { code: 'IO_ERROR' });
  t.equal(volume.replicaStatuses()[1]?.state, 'rebuilding', 'still current and still receiving writes');
  await volume.write(0, filled(10, 1));
  control.rejectJoins = undefined;
  const retry = await volume.rebuildReplica('r1');
  t.equal(retry.totalBytes, 0, 'nothing missed, nothing copied');
  t.equal(volume.replicaStatuses()[1]?.state, 'in-sync');
  await t.rejects(volume.rebuildReplica('r1'), { code: 'INVALID_ARGUMENT' });
});

t.test('added replicas are checked and rebuilt in full; removal of the last in-sync replica is refused', async (t) => {
  const { volume, replicas } = makeVolume({ replicaCount: 1 });
  await volume.write(0, filled(4096, 6));
  t.throws(
    () => volume.addReplica({ id: 'small', nodeId: 'nx', device: new ScriptedReplica({ sizeBytes: 10 }), local: false }),
    { code: 'INVALID_ARGUMENT' },
  );
  const fresh = new ScriptedReplica({ sizeBytes: VOLUME_BYTES });
  volume.addReplica({ id: 'new', nodeId: 'n9', device: fresh, local: false });
  await volume.rebuildReplica('new');
  const r0 = replicas[0];
  if (r0 === undefined) throw new Error('fixture');
  await sameContents(t, r0, fresh, 'full copy');
  volume.removeReplica('r0');
  t.throws(() => volume.removeReplica('new'), { code: 'INVALID_ARGUMENT' });
});
