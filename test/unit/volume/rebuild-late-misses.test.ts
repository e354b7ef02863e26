import t from 'tap';
import { filled, makeVolume, readStore } from './helpers/volume-fixture.js';

/**
 * A rebuild reads what the replica missed, then makes it a write target. A
 * write dispatched before that (so without this replica) and answered
 * after it records its miss too late for that plan: the rebuild has to
 * wait for such writes and copy them as well, or the replica joins the
 * in-sync set without them (ARCHITECTURE invariant 4).
 */

const SPIN_TICKS = 20;

async function spin(): Promise<void> {
  for (let tick = 0; tick < SPIN_TICKS; tick += 1) await Promise.resolve();
}

t.test('a write in flight when the rebuild starts reaches the rebuilt replica', async (t) => {
  const { volume, replicas, control } = makeVolume({ replicaCount: 3 });
  const [r0, , r2] = replicas;
  if (r0 === undefined || r2 === undefined) throw new Error('fixture');
  r2.failNthMutation(1);
  await volume.write(0, filled(4096, 1));
  t.same(control.reports, ['r2'], 'r2 missed the first write and was reported');
  t.same(volume.dirtyRegions('r2'), [{ offset: 0, lengthBytes: 4096 }]);
  r2.heal();

  r0.hold();
  const late = volume.write(65536, filled(4096, 2));
  await spin();
  const rebuilt = volume.rebuildReplica('r2', { chunkBytes: 4096 });
  await spin();
  r0.release();
  await late;
  await rebuilt;

  t.equal(volume.replicaStatuses()[2]?.state, 'in-sync');
  t.same(await readStore(r2, 0, 4096), filled(4096, 1), 'the write it missed before the rebuild was copied');
  t.same(await readStore(r2, 65536, 4096), filled(4096, 2), 'the write in flight when the rebuild started was copied too');
});
