import t from 'tap';
import { mergeRanges } from '../../../daemon/snapshots/snapshot-rebuild.js';

t.test('mergeRanges joins overlapping and touching ranges, sorted, clipped to the volume', async (t) => {
  const merged = mergeRanges(
    [
      { offset: 4096, lengthBytes: 4096 },
      { offset: 0, lengthBytes: 4096 },
      { offset: 16384, lengthBytes: 8192 },
      { offset: 20480, lengthBytes: 1024 },
      { offset: 30000, lengthBytes: 10000 },
      { offset: 40000, lengthBytes: 5 },
    ],
    32768,
  );
  t.same(merged, [
    { offset: 0, lengthBytes: 8192 },
    { offset: 16384, lengthBytes: 8192 },
    { offset: 30000, lengthBytes: 2768 },
  ]);
  t.same(mergeRanges([], 4096), []);
});
