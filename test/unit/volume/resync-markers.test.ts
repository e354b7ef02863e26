/**
 * The marker choice of delta resync (blockdev/volume/resync-markers.ts)
 * against a real RegionTracker standing in for the source replica: the
 * chosen marker must make the source report every region the failing
 * replica missed, including a write that was still in flight to it when a
 * newer marker came back.
 */
import t from 'tap';
import { RegionTracker } from '../../../blockdev/replica/region-tracker.js';
import { ResyncMarkers } from '../../../blockdev/volume/resync-markers.js';

const REGION = 4096;

/** The source replica's side of one write: activate, complete. */
function writeOnSource(tracker: RegionTracker, region: number): void {
  const regions = [region];
  tracker.startWrite(regions);
  tracker.finishWrite(regions);
}

function flushSource(tracker: RegionTracker): void {
  tracker.finishFlush(tracker.startFlush());
}

t.test('a write in flight to the failing replica when a newer marker arrives: the older marker is chosen', async (t) => {
  const source = new RegionTracker(REGION, new Map(), 0);
  const book = new ResyncMarkers();
  writeOnSource(source, 1); // history before the session's first marker
  flushSource(source);
  flushSource(source);
  book.record('s', source.currentMarker());
  const before = source.currentMarker();

  // Write W to region 7: done on the source, still travelling to the failing replica.
  const w = book.dispatch();
  writeOnSource(source, 7);
  // Two flushes complete on the source: region 7 is idle and cleared there.
  flushSource(source);
  flushSource(source);
  // A marker refresh answers now, while W is still unsettled.
  book.record('s', source.currentMarker());
  const tooNew = source.currentMarker();
  t.ok(tooNew > before, 'the source moved on');

  // The failing replica reports W failed: the marker chosen must still show region 7.
  const chosen = book.markersBefore(['s']);
  book.settled(w);
  t.same(chosen, { s: before }, 'the marker from before W was dispatched');
  t.same(source.dirtySince(before, 0, 16).regions, [7], 'it reports the region the failing replica missed');
  // The canary: the newest marker would have lost W (this is what the rule prevents).
  t.same(source.dirtySince(tooNew, 0, 16).regions, [], 'the newer marker would have lost the write');
});

t.test('with nothing in flight the newest marker is safe and older ones are pruned', async (t) => {
  const source = new RegionTracker(REGION, new Map(), 0);
  const book = new ResyncMarkers();
  book.record('s', source.currentMarker());
  const first = book.dispatch();
  writeOnSource(source, 2);
  book.settled(first); // acknowledged by every replica
  flushSource(source);
  flushSource(source);
  book.record('s', source.currentMarker());
  const newest = source.currentMarker();
  t.same(book.markersBefore(['s']), { s: newest });
  t.equal(book.markerCount('s'), 1, 'the older marker is never needed again');
  // A write the failing replica misses from now on is reported against the newest marker.
  book.dispatch();
  writeOnSource(source, 5);
  t.same(source.dirtySince(newest, 0, 16).regions, [5]);
});

t.test('a marker answered while an earlier write is unsettled is kept but not offered yet', async (t) => {
  const book = new ResyncMarkers();
  book.record('s', 10);
  const early = book.dispatch();
  book.record('s', 20); // covers only mutations dispatched after this point
  t.same(book.markersBefore(['s']), { s: 10 });
  book.settled(early);
  t.same(book.markersBefore(['s']), { s: 20 }, 'once the earlier write settled everywhere, the newer marker is safe');
  const later = book.dispatch();
  book.record('s', 30);
  t.same(book.markersBefore(['s']), { s: 20 });
  book.settled(later);
  t.same(book.markersBefore(['s']), { s: 30 });
});

t.test('no marker before the first unsettled write: none is offered (the replica is copied in full)', async (t) => {
  const book = new ResyncMarkers();
  const early = book.dispatch();
  book.record('s', 5);
  t.same(book.markersBefore(['s', 'unknown']), {});
  book.settled(early);
  t.same(book.markersBefore(['s']), { s: 5 });
});

t.test('forget and a restarted tracker void the older markers', async (t) => {
  const book = new ResyncMarkers();
  book.record('s', 40);
  book.forget('s');
  t.same(book.markersBefore(['s']), {});
  book.record('s', 40);
  const held = book.dispatch();
  book.record('s', 3); // smaller: the replica's tracking restarted; marker 40 means nothing there now
  t.same(book.markersBefore(['s']), {}, 'the restarted one does not cover the unsettled write and 40 is void');
  book.settled(held);
  t.same(book.markersBefore(['s']), { s: 3 });
});

t.test('bounded: when full, the newest marker is dropped (older ones stay safe)', async (t) => {
  const book = new ResyncMarkers(2);
  book.record('s', 1);
  const held = book.dispatch();
  book.record('s', 2);
  book.record('s', 3);
  t.equal(book.markerCount('s'), 2);
  book.settled(held);
  t.same(book.markersBefore(['s']), { s: 2 });
});
