import t from 'tap';
import { type RegionRecord, RegionTracker } from '../../../blockdev/replica/region-tracker.js';

/** The pure activity-log / dirty-region core (ARCHITECTURE invariant 4). */

const REGION = 4 * 1024 * 1024;

t.test('a write marks its regions once; idle regions clear after two flushes', async (t) => {
  const tracker = new RegionTracker(REGION, new Map(), 0);
  const regions = tracker.regionsOf(REGION - 1, 2);
  t.same(regions, [0, 1], 'a write straddling a boundary touches both regions');
  t.same([...tracker.startWrite(regions).keys()], [0, 1], 'fresh regions need a durable mark');
  t.same([...tracker.startWrite([1]).keys()], [], 'an active region needs no second mark');
  tracker.finishWrite(regions);
  tracker.finishWrite([1]);
  t.same([...tracker.finishFlush(tracker.startFlush()).keys()], [], 'not cleared by the first flush');
  t.same([...tracker.finishFlush(tracker.startFlush()).keys()], [0, 1], 'cleared by the second');
  t.same(tracker.activeRegions(0, 10), []);
});

t.test('a region with a write in flight is never cleared', async (t) => {
  const tracker = new RegionTracker(REGION, new Map(), 0);
  tracker.startWrite([3]);
  for (let flush = 0; flush < 4; flush += 1) tracker.finishFlush(tracker.startFlush());
  t.same(tracker.activeRegions(0, 10), [3]);
  tracker.finishWrite([3]);
  t.throws(() => tracker.finishWrite([3]), 'an unbalanced finish is a bug, caught loudly');
});

t.test('dirty since a marker, and a conservative reload', async (t) => {
  const tracker = new RegionTracker(REGION, new Map(), 0);
  tracker.startWrite([1]);
  tracker.finishWrite([1]);
  tracker.finishFlush(tracker.startFlush());
  tracker.finishFlush(tracker.startFlush());
  const marker = tracker.currentMarker();
  t.same(tracker.dirtySince(marker, 0, 10).regions, [], 'nothing changed since now');
  tracker.startWrite([5]);
  t.same(tracker.dirtySince(marker, 0, 10).regions, [5]);
  t.same(tracker.dirtySince(marker, 0, 5).regions, [], 'the range limits the answer');
  t.equal(tracker.dirtySince(marker + 100, 0, 10).complete, false, 'a future marker is not answerable');

  const stored = new Map<number, RegionRecord>([
    [1, { seq: 3, active: false }],
    [5, { seq: 4, active: true }],
  ]);
  const reloaded = new RegionTracker(REGION, stored, 10);
  t.same(reloaded.activeRegions(0, 10), [5], 'active regions survive');
  t.same(reloaded.dirtySince(10, 0, 10).regions, [5], 'an active region counts as changed after any marker');
  t.ok(reloaded.currentMarker() > 10, 'sequences continue above every marker handed out');
});
