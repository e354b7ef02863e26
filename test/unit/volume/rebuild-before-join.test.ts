/**
 * Issue 7: a rebuilt replica is told it is repaired (its unclean flag clears,
 * daemon/volume/volume-session.ts rebuild) after the copy completed and
 * before it is committed in-sync; if that fails, the rebuild fails like a
 * failed copy and the replica stays out of the set.
 */
import t from 'tap';
import { filled, makeVolume } from './helpers/volume-fixture.js';

t.test('beforeJoin runs after the copy and before markInSync', async (t) => {
  const { volume, replicas, control } = makeVolume({ faultedIndexes: [2] });
  await volume.write(0, filled(8192, 7));
  const order: string[] = [];
  await volume.rebuildReplica('r2', {
    beforeJoin: async () => {
      const copied = Buffer.alloc(8192);
      await replicas[2]?.read(0, copied);
      order.push(copied.equals(filled(8192, 7)) ? 'repaired after the copy' : 'repaired before the copy');
      order.push(`joins so far: ${control.joins.length}`);
    },
  });
  t.same(order, ['repaired after the copy', 'joins so far: 0'], 'told after the data is there, before it re-enters the set');
  t.same(control.joins, ['r2'], 'then committed in-sync');
  t.match(volume.replicaStatuses().find((status) => status.id === 'r2'), { state: 'in-sync' });
});

t.test('a failing beforeJoin fails the rebuild; the replica stays faulted and a retry copies again', async (t) => {
  const { volume, control } = makeVolume({ faultedIndexes: [1] });
  await volume.write(4096, filled(4096, 3));
  await t.rejects(
    volume.rebuildReplica('r1', {
      beforeJoin: () => Promise.reject(new Error('replica unreachable')),
    }),
    { message: 'replica unreachable' },
  );
  t.same(control.joins, [], 'not committed in-sync');
  t.match(volume.replicaStatuses().find((status) => status.id === 'r1'), { state: 'faulted' });
  const progress = await volume.rebuildReplica('r1', { beforeJoin: async () => {} });
  t.ok(progress.doneBytes > 0, 'the retry copied again');
  t.same(control.joins, ['r1']);
});
