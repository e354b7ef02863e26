/**
 * The controller side of delta resync across owners (issue 4): a failure
 * report carries, for each in-sync replica, a dirty marker that predates
 * every write the failed replica missed, and a rebuild of a replica that
 * arrived faulted copies what it missed before plus what it missed while
 * that was being asked. Replicas keep a real RegionTracker, so the markers
 * are checked by asking the tracker what changed since.
 */
import pino from 'pino';
import t from 'tap';
import type { WriteOptions } from '../../../blockdev/block-device.js';
import { RegionTracker } from '../../../blockdev/replica/region-tracker.js';
import type { RegionSet } from '../../../blockdev/volume/dirty-regions.js';
import { ReplicatedVolume } from '../../../blockdev/volume/replicated-volume.js';
import type { ReplicaSpec } from '../../../blockdev/volume/replica-set.js';
import { ScriptedReplica } from './helpers/scripted-replica.js';
import { deferred, filled, readStore, VOLUME_BYTES } from './helpers/volume-fixture.js';

const REGION = 64 * 1024;

/** A scripted replica that keeps the replica side's region tracker like blockdev/replica/activity-log.ts. */
class TrackedReplica extends ScriptedReplica {
  readonly tracker = new RegionTracker(REGION, new Map(), 0);

  override async write(offset: number, data: Buffer, options: WriteOptions = {}): Promise<void> {
    const regions = this.tracker.regionsOf(offset, data.length);
    this.tracker.startWrite(regions);
    try {
      await super.write(offset, data, options);
    } finally {
      this.tracker.finishWrite(regions);
    }
  }

  override async flush(): Promise<void> {
    const epoch = this.tracker.startFlush();
    await super.flush();
    this.tracker.finishFlush(epoch);
  }
}

interface Harness {
  readonly volume: ReplicatedVolume;
  readonly replicas: Map<string, TrackedReplica>;
  readonly reports: Array<{ replicaId: string; markers: Readonly<Record<string, number>> }>;
  /** When set, marker answers wait for it (an answer still on its way). */
  markerGate: Promise<void> | undefined;
}

function makeHarness(faulted: readonly string[] = []): Harness {
  const replicas = new Map(['r0', 'r1', 'r2'].map((id) => [id, new TrackedReplica({ sizeBytes: VOLUME_BYTES, chunkBytes: 4096 })]));
  const specs: ReplicaSpec[] = [...replicas].map(([id, device], index) => ({ id, nodeId: id, device, local: index === 0, state: faulted.includes(id) ? 'faulted' : 'in-sync' }));
  const initial: Record<string, number> = {};
  for (const [id, replica] of replicas) if (!faulted.includes(id)) initial[id] = replica.tracker.currentMarker();
  const harness: Harness = {
    replicas,
    reports: [],
    markerGate: undefined,
    volume: undefined as unknown as ReplicatedVolume,
  };
  const volume = new ReplicatedVolume(
    { volumeId: 'vol-markers', sizeBytes: VOLUME_BYTES, resyncMarkers: initial, markerRefreshMs: 0 },
    {
      replicas: specs,
      logger: pino({ level: 'silent' }),
      reportReplicaFailure: async (replicaId, _error, markers) => {
        harness.reports.push({ replicaId, markers });
      },
      markInSync: async () => undefined,
      fetchDirtyMarker: async (replicaId) => {
        if (harness.markerGate !== undefined) await harness.markerGate;
        const replica = replicas.get(replicaId);
        if (replica === undefined) throw new Error(`no replica ${replicaId}`);
        return replica.tracker.currentMarker();
      },
    },
  );
  return Object.assign(harness, { volume });
}

function tracked(harness: Harness, id: string): TrackedReplica {
  const replica = harness.replicas.get(id);
  if (replica === undefined) throw new Error(`no replica ${id}`);
  return replica;
}

async function settleTicks(rounds = 20): Promise<void> {
  for (let round = 0; round < rounds; round += 1) await new Promise((resolve) => setImmediate(resolve));
}

t.test('a write in flight to the failing replica when a fresher marker arrives: the report keeps the older one', async (t) => {
  const harness = makeHarness();
  const { volume } = harness;
  const [r0, r2] = [tracked(harness, 'r0'), tracked(harness, 'r2')];
  await volume.write(0, filled(4096, 1));
  for (let flush = 0; flush < 3; flush += 1) {
    await volume.flush(); // region 0 idle across two flushes: cleared; each flush refreshes the markers
    await volume.markersSettled();
  }
  const beforeW = r0.tracker.currentMarker();

  // A refresh whose answer is still on its way while W is dispatched.
  const gate = deferred();
  harness.markerGate = gate.promise;
  await volume.flush();
  r2.hold();
  const w = volume.write(7 * REGION, filled(4096, 7));
  await settleTicks();
  t.equal(r2.heldCount(), 1, 'W waits at r2 and is done on r0 and r1');
  // r0 completes two more flushes of its own (another owner's view does not matter here): region 7 is cleared there.
  await r0.flush();
  await r0.flush();
  gate.resolve();
  await volume.markersSettled();
  const tooNew = r0.tracker.currentMarker();
  t.ok(tooNew > beforeW, 'the fresh answer is newer than W');

  r2.failFromNow();
  r2.release();
  await w;
  const report = harness.reports.find((entry) => entry.replicaId === 'r2');
  t.ok(report !== undefined, 'r2 was reported');
  const marker = report?.markers['r0'];
  t.equal(marker, beforeW, 'the marker from before W was dispatched');
  t.same(r0.tracker.dirtySince(marker ?? Number.MAX_SAFE_INTEGER, 0, 16).regions, [7], 'it shows exactly the region r2 missed');
  t.same(r0.tracker.dirtySince(tooNew, 0, 16).regions, [], 'canary: the fresher marker would have lost W');
  t.type(report?.markers['r1'], 'number', 'every in-sync replica offers its marker');
  t.notOk(report !== undefined && Object.hasOwn(report.markers, 'r2'), 'never one of the failed replica itself');
});

t.test('a replica leaving the set offers no marker for a later failure', async (t) => {
  const harness = makeHarness();
  const { volume } = harness;
  tracked(harness, 'r1').failFromNow();
  await volume.write(0, filled(4096, 1));
  tracked(harness, 'r2').failFromNow();
  await volume.write(4096, filled(4096, 2));
  t.same(
    harness.reports.map((report) => [report.replicaId, Object.keys(report.markers).sort()]),
    [
      ['r1', ['r0', 'r2']],
      ['r2', ['r0']],
    ],
  );
});

t.test('rebuild of a replica that arrived faulted: what it missed before, plus what it missed while that was asked', async (t) => {
  const harness = makeHarness(['r2']);
  const { volume } = harness;
  const [r0, r2] = [tracked(harness, 'r0'), tracked(harness, 'r2')];
  await volume.write(3 * REGION, filled(4096, 3));
  t.same(volume.dirtyRegions('r2'), 'all', 'the controller never saw what r2 missed before');
  const missedBefore = async (): Promise<RegionSet> => {
    // A write while the question is out: r2 misses it and the answer below does not name it.
    await volume.write(9 * REGION, filled(4096, 9));
    return [{ offset: 3 * REGION, lengthBytes: REGION }];
  };
  const progress = await volume.rebuildReplica('r2', { missedBefore, chunkBytes: REGION });
  t.equal(progress.totalBytes, REGION + 4096, 'only the region named by the answer and the 4 KiB missed meanwhile');
  t.same(await readStore(r2, 0, VOLUME_BYTES), await readStore(r0, 0, VOLUME_BYTES), 'r2 equals r0 byte for byte');
  t.equal(volume.replicaStatuses()[2]?.state, 'in-sync');
});

t.test('an unknown history is a full copy: missedBefore answers all or fails', async (t) => {
  for (const answer of ['all', 'reject'] as const) {
    const harness = makeHarness(['r2']);
    const { volume } = harness;
    await volume.write(0, filled(4096, 5));
    const missedBefore = async (): Promise<RegionSet> => {
      if (answer === 'reject') throw new Error('source unreachable');
      return 'all';
    };
    const progress = await volume.rebuildReplica('r2', { missedBefore });
    t.equal(progress.totalBytes, VOLUME_BYTES, `${answer}: the whole volume`);
    t.same(await readStore(tracked(harness, 'r2'), 0, VOLUME_BYTES), await readStore(tracked(harness, 'r0'), 0, VOLUME_BYTES));
  }
});
