import t from 'tap';
import { pino } from 'pino';
import { createSnapshotRetentionReconciler } from '../../../daemon/reconciler/snapshot-retention-reconciler.js';
import { autoSnapshotName, isAutoSnapshotName, planRetention } from '../../../daemon/snapshots/retention-plan.js';
import { findVolume, type ClusterState } from '../../../daemon/state/cluster-state.js';
import { decodeCommand } from '../../../daemon/state/commands.js';
import { ok, refused, withNodes } from '../daemon/helpers/cluster-state-fixture.js';

/** Retention schedules (issue 8 "Retention"): the volume.snapshot-schedule command, the pure plan, the leader's reconciler on an injected clock. */

const AT = '2026-11-26T00:00:00.000Z';
const START_MS = Date.parse(AT);
const HOUR_MS = 3_600_000;

const RECEIVE_SOURCE = {
  sourceClusterId: 'cluster-a', sourceVolumeId: 'src-id', sourceVolumeName: 'db', snapshotName: 's1', sourceSnapshotId: 'src-s1',
  baseSourceSnapshotId: null, totalChunkCount: 4, volumeSizeBytes: 1024 ** 2,
};

function baseState(): ClusterState {
  return ok(withNodes(['n1', 'n2'], AT), { type: 'volume.create', id: 'id-v1', name: 'v1', sizeBytes: 1024 ** 3, replicaCount: 2, createdAt: AT }).state;
}

function withSnapshot(state: ClusterState, snapshotName: string, createdAtMs: number): ClusterState {
  const volume = findVolume(state, 'v1');
  if (volume === undefined) throw new Error('no v1');
  return ok(state, {
    type: 'snapshot.create', name: 'v1', snapshotId: `id-${snapshotName}`, snapshotName, createdAt: new Date(createdAtMs).toISOString(),
    generation: volume.generation, holders: ['n1', 'n2'],
  }).state;
}

t.test('volume.snapshot-schedule sets, replaces and clears; bad schedules are refused', async (t) => {
  const set = ok(baseState(), { type: 'volume.snapshot-schedule', name: 'v1', everyMs: HOUR_MS, keep: 24 }).state;
  t.same(findVolume(set, 'v1')?.snapshotSchedule, { everyMs: HOUR_MS, keep: 24 });
  const replaced = ok(set, { type: 'volume.snapshot-schedule', name: 'v1', everyMs: 2 * HOUR_MS, keep: 3 }).state;
  t.same(findVolume(replaced, 'v1')?.snapshotSchedule, { everyMs: 2 * HOUR_MS, keep: 3 });
  const off = ok(replaced, { type: 'volume.snapshot-schedule', name: 'v1' }).state;
  t.equal(findVolume(off, 'v1')?.snapshotSchedule, undefined);
  t.match(refused(set, { type: 'volume.snapshot-schedule', name: 'v1', everyMs: 1000, keep: 3 }), { code: 'INVALID_ARGUMENT', message: /everyMs/ });
  t.match(refused(set, { type: 'volume.snapshot-schedule', name: 'v1', everyMs: HOUR_MS, keep: 0 }), { code: 'INVALID_ARGUMENT', message: /keep/ });
  t.match(refused(set, { type: 'volume.snapshot-schedule', name: 'v1', everyMs: HOUR_MS }), { code: 'INVALID_ARGUMENT' });
  t.match(refused(set, { type: 'volume.snapshot-schedule', name: 'nope', everyMs: HOUR_MS, keep: 1 }), { code: 'VOLUME_NOT_FOUND' });
  t.throws(() => decodeCommand({ type: 'volume.snapshot-schedule', name: 'v1', everyMs: '1h', keep: 1 }), { code: 'INVALID_ARGUMENT' });
});

t.test('auto snapshot names: ISO basic format, recognised exactly', async (t) => {
  t.equal(autoSnapshotName(Date.parse('2026-11-26T22:05:09.123Z')), 'auto-20261126T220509Z');
  t.ok(isAutoSnapshotName('auto-20261126T220509Z'));
  t.notOk(isAutoSnapshotName('auto-nightly'));
  t.notOk(isAutoSnapshotName('before-upgrade'));
});

t.test('plan: due when the newest auto snapshot is everyMs old; the oldest autos beyond keep go; user snapshots stay', async (t) => {
  let state = ok(baseState(), { type: 'volume.snapshot-schedule', name: 'v1', everyMs: HOUR_MS, keep: 2 }).state;
  t.same(planRetention(state, START_MS), [{ kind: 'create', volume: 'v1', snapshotName: autoSnapshotName(START_MS) }], 'none yet: due now');
  state = withSnapshot(state, 'before-upgrade', START_MS - 5 * HOUR_MS);
  for (const hour of [0, 1, 2]) state = withSnapshot(state, autoSnapshotName(START_MS + hour * HOUR_MS), START_MS + hour * HOUR_MS);
  t.same(planRetention(state, START_MS + 2 * HOUR_MS + 1000), [{ kind: 'delete', volume: 'v1', snapshotName: autoSnapshotName(START_MS) }], 'not due yet; one auto too many');
  const later = planRetention(state, START_MS + 3 * HOUR_MS);
  t.same(later.map((action) => action.kind), ['delete', 'create']);
  t.notOk(later.some((action) => action.snapshotName === 'before-upgrade'), 'never a user-named snapshot');
  const receiving = ok(
    ok(ok(baseState(), { type: 'volume.snapshot-schedule', name: 'v1', everyMs: HOUR_MS, keep: 2 }).state, { type: 'volume.receive-start', name: 'r1', nodeId: 'n1', at: AT, source: RECEIVE_SOURCE, create: { id: 'id-r1', sizeBytes: 1024 ** 2, replicaCount: 2 } }).state,
    { type: 'volume.snapshot-schedule', name: 'r1', everyMs: HOUR_MS, keep: 2 },
  ).state;
  t.same(planRetention(receiving, START_MS).map((action) => action.volume), ['v1'], 'a volume being received is left alone');
});

t.test('reconciler: 30 simulated hours of hourly snapshots keep the newest 24; only the leader acts; failures retry', async (t) => {
  let state = ok(baseState(), { type: 'volume.snapshot-schedule', name: 'v1', everyMs: HOUR_MS, keep: 24 }).state;
  state = withSnapshot(state, 'golden', START_MS - HOUR_MS);
  let nowMs = START_MS;
  let leader = true;
  let failNext = false;
  const calls: string[] = [];
  const reconciler = createSnapshotRetentionReconciler(
    { intervalMs: 60_000 },
    {
      state: () => state,
      isLeader: () => leader,
      nowMs: () => nowMs,
      createSnapshot: async (volume, snapshotName) => {
        calls.push(`create ${snapshotName}`);
        if (failNext) {
          failNext = false;
          throw new Error('owner unreachable');
        }
        state = withSnapshot(state, snapshotName, nowMs);
        t.equal(volume, 'v1');
      },
      deleteSnapshot: async (volume, snapshotName) => {
        calls.push(`delete ${snapshotName}`);
        state = ok(state, { type: 'snapshot.delete', name: volume, snapshotName }).state;
      },
      logger: pino({ level: 'silent' }),
    },
  );
  t.teardown(() => reconciler.close());
  // Every 10 simulated minutes for 30 hours.
  for (let step = 0; step < 30 * 6; step++) {
    if (step === 40) failNext = true;
    await reconciler.tick();
    nowMs += 10 * 60_000;
  }
  const names = (findVolume(state, 'v1')?.snapshots ?? []).map((snapshot) => snapshot.name);
  t.ok(names.includes('golden'), 'the user-named snapshot survives');
  const autos = names.filter(isAutoSnapshotName);
  t.equal(autos.length, 24, 'keep 24');
  t.ok(calls.filter((call) => call.startsWith('create')).length >= 30, 'one snapshot per simulated hour (plus the retried failure)');
  const before = calls.length;
  leader = false;
  nowMs += 5 * HOUR_MS;
  await reconciler.tick();
  t.equal(calls.length, before, 'a follower does nothing');
});
