import { join } from 'node:path';
import t from 'tap';
import { freeVolumeSpace } from '../../../daemon/volume/applied-state-watcher.js';
import { EXTENT, makeTempDir, openTestDb, openTestPool } from '../pool/pool-fixture.js';

// The deleting node's control plane and its applied-state watcher both free a
// deleted volume, often at the same moment (CI once saw INTERNAL on DELETE).
t.test('two frees of one open volume at once on a disk pool: both succeed and every extent is free', async (t) => {
  const dir = await makeTempDir(t);
  const pool = await openTestPool(t, openTestDb(t, dir), { disks: [{ path: join(dir, 'disk0'), sizeBytes: 64 * EXTENT }] });
  for (let round = 0; round < 20; round += 1) {
    const volumeId = `vol-${round}`;
    const store = await pool.openVolume(volumeId, 8 * EXTENT);
    await store.write(0, Buffer.alloc(2 * EXTENT, round + 1));
    const gone = { volumeId, name: volumeId, sizeBytes: 8 * EXTENT };
    const outcomes = await Promise.allSettled([freeVolumeSpace(pool, gone), freeVolumeSpace(pool, gone)]);
    t.same(
      outcomes.map((outcome) => (outcome.status === 'fulfilled' ? 'freed' : String(outcome.reason))),
      ['freed', 'freed'],
      `round ${round}`,
    );
    t.equal(pool.volumeAllocatedBytes(volumeId), 0);
  }
  t.equal(pool.stats().usedBytes, 0, 'nothing left allocated');
});
