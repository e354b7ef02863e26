import t from 'tap';
import { ExtentAllocator, type AllocatorDiskOptions } from '../../../blockdev/pool/extent-allocator.js';
import { locationDiskIndex, locationExtentIndex, packLocation } from '../../../blockdev/pool/extent-map.js';

/** The allocator alone: HWM bumps, known-zero, pending frees, spreading, NO_SPACE. */

function makeAllocator(disks: AllocatorDiskOptions[], hwmChunkExtents = 4) {
  const persisted: { diskIndex: number; highWaterMark: number }[] = [];
  const allocator = new ExtentAllocator(
    { disks, hwmChunkExtents },
    {
      persistHighWaterMark: async (diskIndex, highWaterMark) => {
        persisted.push({ diskIndex, highWaterMark });
      },
    },
  );
  allocator.finishLoad();
  return { allocator, persisted };
}

t.test('fresh extents are known zero and the HWM is made durable in chunks before use', async (t) => {
  const { allocator, persisted } = makeAllocator([{ index: 0, extentCount: 11, highWaterMark: 1 }]);
  const first = await allocator.allocate();
  t.same(first, { location: packLocation(0, 1), knownZero: true }, 'extent 0 is reserved');
  t.same(persisted, [{ diskIndex: 0, highWaterMark: 5 }], 'one bump covers a chunk of four');
  for (let n = 0; n < 3; n += 1) await allocator.allocate();
  t.equal(persisted.length, 1, 'no sync for the rest of the chunk');
  await allocator.allocate();
  t.same(persisted[1], { diskIndex: 0, highWaterMark: 9 });
  const rest = [await allocator.allocate(), await allocator.allocate(), await allocator.allocate(), await allocator.allocate()];
  t.same(rest.map((allocation) => locationExtentIndex(allocation.location)), [6, 7, 8, 9]);
  t.same(persisted[2], { diskIndex: 0, highWaterMark: 11 }, 'capped at the extent count');
  await allocator.allocate();
  await t.rejects(allocator.allocate(), { code: 'NO_SPACE' });
});

t.test('a failing HWM sync fails the allocation and hands nothing out', async (t) => {
  const allocator = new ExtentAllocator(
    { disks: [{ index: 0, extentCount: 8, highWaterMark: 1 }] },
    {
      persistHighWaterMark: async () => {
        throw new Error('disk on fire');
      },
    },
  );
  allocator.finishLoad();
  await t.rejects(allocator.allocate(), { message: 'disk on fire' });
  t.equal(allocator.usedExtents(0), 0);
});

t.test('block devices and pre-existing files have nothing known zero', async (t) => {
  const { allocator, persisted } = makeAllocator([{ index: 0, extentCount: 4, highWaterMark: 4 }]);
  const allocations = [await allocator.allocate(), await allocator.allocate(), await allocator.allocate()];
  t.ok(allocations.every((allocation) => !allocation.knownZero));
  t.same(persisted, [], 'no HWM sync needed');
  await t.rejects(allocator.allocate(), { code: 'NO_SPACE' });
});

t.test('freed extents stay unusable until released, and busy ones stay pending', async (t) => {
  const { allocator } = makeAllocator([{ index: 0, extentCount: 3, highWaterMark: 1 }]);
  const a = await allocator.allocate();
  const b = await allocator.allocate();
  await t.rejects(allocator.allocate(), { code: 'NO_SPACE' });
  allocator.free(a.location);
  allocator.free(b.location);
  t.equal(allocator.usedExtents(0), 2, 'pending frees still count as used');
  await t.rejects(allocator.allocate(), { code: 'NO_SPACE', details: { pendingFreeExtents: 2 } }, 'not reusable before the unmapping is durable');
  const frees = allocator.takePendingFrees();
  allocator.release(frees, (location) => location === b.location);
  t.equal(allocator.pendingFreeCount, 1, 'the busy one waits for the next flush');
  const reused = await allocator.allocate();
  t.same(reused, { location: a.location, knownZero: false }, 'a reused extent is never known zero');
  await t.rejects(allocator.allocate(), { code: 'NO_SPACE' });
  allocator.release(allocator.takePendingFrees(), () => false);
  t.equal((await allocator.allocate()).location, b.location);
});

t.test('bookkeeping errors are caught loudly', async (t) => {
  const { allocator } = makeAllocator([{ index: 0, extentCount: 4, highWaterMark: 4 }]);
  const a = await allocator.allocate();
  allocator.free(a.location);
  t.throws(() => allocator.free(a.location), { code: 'INTERNAL' }, 'double free');
  t.throws(() => allocator.returnUnused(a.location), { code: 'INTERNAL' });
  t.throws(() => allocator.free(packLocation(9, 1)), { code: 'METADATA_CORRUPT' }, 'unknown disk');
});

t.test('load: mapped extents are used; duplicates and extents above the HWM are corrupt', async (t) => {
  const allocator = new ExtentAllocator({ disks: [{ index: 0, extentCount: 10, highWaterMark: 5 }] }, { persistHighWaterMark: async () => undefined });
  allocator.markUsed(packLocation(0, 2));
  t.throws(() => allocator.markUsed(packLocation(0, 2)), { code: 'METADATA_CORRUPT' });
  t.throws(() => allocator.markUsed(packLocation(0, 0)), { code: 'METADATA_CORRUPT' });
  t.throws(() => allocator.markUsed(packLocation(0, 7)), { code: 'METADATA_CORRUPT' });
  allocator.finishLoad();
  // Fresh extents (>= HWM 5) first: they need no zeroing.
  t.same(await allocator.allocate(), { location: packLocation(0, 5), knownZero: true });
  t.equal(allocator.usedExtents(0), 2);
});

t.test('allocation goes to the disk with the most free extents', async (t) => {
  const { allocator } = makeAllocator([
    { index: 0, extentCount: 5, highWaterMark: 1 },
    { index: 1, extentCount: 9, highWaterMark: 1 },
  ]);
  const disks: number[] = [];
  for (let n = 0; n < 12; n += 1) {
    disks.push(locationDiskIndex((await allocator.allocate()).location));
  }
  t.same(disks.slice(0, 4), [1, 1, 1, 1], 'the bigger disk first, until both have as many free');
  t.equal(disks.filter((disk) => disk === 0).length, 4);
  t.equal(disks.filter((disk) => disk === 1).length, 8);
});

t.test('concurrent allocations share one HWM bump', async (t) => {
  const { allocator, persisted } = makeAllocator([{ index: 0, extentCount: 100, highWaterMark: 1 }], 64);
  const allocations = await Promise.all(Array.from({ length: 20 }, () => allocator.allocate()));
  t.equal(new Set(allocations.map((allocation) => allocation.location)).size, 20, 'all distinct');
  t.same(persisted, [{ diskIndex: 0, highWaterMark: 65 }]);
});
