import t from 'tap';
import { PlinthError } from '../../../common/plinth-error.js';
import { deferred, filled, makeVolume, readStore } from './helpers/volume-fixture.js';
import { ioError } from './helpers/scripted-replica.js';

/** Let queued promise callbacks run (no timers involved). */
async function settle(): Promise<void> {
  for (let round = 0; round < 20; round += 1) await Promise.resolve();
}

t.test('a write reaches every in-sync replica before it is acknowledged (invariant 1)', async (t) => {
  const { volume, replicas } = makeVolume();
  replicas[2]?.hold();
  let acknowledged = false;
  const writing = volume.write(4096, filled(512, 7)).then(() => {
    acknowledged = true;
  });
  await settle();
  t.notOk(acknowledged, 'not acknowledged while one replica is still writing');
  replicas[2]?.release();
  await writing;
  for (const replica of replicas) t.same(await readStore(replica, 4096, 512), filled(512, 7));
});

t.test('a failing replica is reported and committed out before the write is acknowledged (invariant 2)', async (t) => {
  const { volume, replicas, control } = makeVolume();
  const commit = deferred();
  control.reportGate = commit.promise;
  replicas[1]?.failNthMutation(1);
  let acknowledged = false;
  const writing = volume.write(0, filled(100, 1)).then(() => {
    acknowledged = true;
  });
  await settle();
  t.notOk(acknowledged, 'the write waits for the report to commit');
  t.equal(volume.replicaStatuses()[1]?.state, 'leaving');
  // A disjoint write dispatched meanwhile skips the leaving replica, so it must wait too.
  let secondAcknowledged = false;
  const second = volume.write(8192, filled(100, 2)).then(() => {
    secondAcknowledged = true;
  });
  await settle();
  t.notOk(secondAcknowledged, 'a write the leaving replica missed waits for the same commit');
  commit.resolve();
  await Promise.all([writing, second]);
  t.same(control.reports, ['r1'], 'reported once');
  t.equal(volume.replicaStatuses()[1]?.state, 'faulted');
  t.same(volume.dirtyRegions('r1'), [
    { offset: 0, lengthBytes: 100 },
    { offset: 8192, lengthBytes: 100 },
  ]);
  const writesBefore = replicas[1]?.calls.write;
  await volume.write(0, filled(10, 3));
  t.equal(replicas[1]?.calls.write, writesBefore, 'a faulted replica gets no more writes');
});

t.test('a report that cannot commit fails the write and suspends the volume', async (t) => {
  const { volume, replicas, control } = makeVolume();
  control.rejectReports = new PlinthError('NOT_LEADER', 'no quorum');
  replicas[0]?.failNthMutation(1);
  await t.rejects(volume.write(0, filled(10, 1)), { code: 'IO_ERROR', details: { reason: 'suspended' } });
  t.equal(volume.state, 'suspended');
  await t.rejects(volume.write(100, filled(10, 1)), { code: 'IO_ERROR' });
  await t.rejects(volume.flush(), { code: 'IO_ERROR' });
  await t.rejects(volume.read(0, Buffer.alloc(10)), { code: 'IO_ERROR' });
});

t.test('FENCED from any replica fails the I/O with FENCED and stops serving, without a report', async (t) => {
  const { volume, replicas, control } = makeVolume();
  replicas[2]?.fence();
  await t.rejects(volume.write(0, filled(10, 1)), { code: 'FENCED', details: { volumeId: 'vol-test' } });
  t.equal(volume.state, 'fenced');
  t.same(control.reports, []);
  replicas[2]?.heal();
  await t.rejects(volume.write(0, filled(10, 1)), { code: 'FENCED' });
  await t.rejects(volume.read(0, Buffer.alloc(10)), { code: 'FENCED' });
});

t.test('FENCED on a read stops the volume too', async (t) => {
  const { volume, replicas } = makeVolume();
  replicas[0]?.fence();
  await t.rejects(volume.read(0, Buffer.alloc(10)), { code: 'FENCED' });
  await t.rejects(volume.write(0, filled(1, 1)), { code: 'FENCED' });
});

t.test('when every replica fails, the write fails and the empty in-sync set fails all I/O', async (t) => {
  const { volume, replicas, control } = makeVolume({ replicaCount: 2 });
  for (const replica of replicas) replica.failFromNow();
  await t.rejects(volume.write(0, filled(10, 1)), { code: 'IO_ERROR' });
  t.same([...control.reports].sort(), ['r0', 'r1']);
  await t.rejects(volume.write(0, filled(10, 1)), { code: 'IO_ERROR', details: { reason: 'no-in-sync-replica' } });
  await t.rejects(volume.read(0, Buffer.alloc(10)), { code: 'IO_ERROR', details: { reason: 'no-in-sync-replica' } });
  await t.rejects(volume.flush(), { code: 'IO_ERROR' });
});

t.test('flush and FUA are durable on every in-sync replica', async (t) => {
  const { volume, replicas, control } = makeVolume();
  await volume.write(0, filled(10, 1), { fua: true });
  await volume.flush();
  for (const replica of replicas) {
    t.equal(replica.store.stats.fuaWrites, 1);
    t.equal(replica.store.stats.flushes, 1);
  }
  replicas[1]?.failFromNow(ioError('flush failed'), ['flush']);
  await volume.flush();
  t.same(control.reports, ['r1'], 'a replica that cannot flush leaves the set before the flush completes');
});

t.test('overlapping writes land in the same order on every replica; disjoint ones run concurrently', async (t) => {
  const { volume, replicas } = makeVolume();
  replicas[1]?.hold();
  const first = volume.write(0, filled(100, 1));
  const overlapping = volume.write(50, filled(100, 2));
  const disjoint = volume.write(4096, filled(100, 3));
  await settle();
  t.equal(replicas[1]?.heldCount(), 2, 'the first and the disjoint write are both at the slow replica');
  t.equal(replicas[0]?.calls.write, 2, 'the overlapping write was not dispatched yet');
  replicas[1]?.release();
  await Promise.all([first, overlapping, disjoint]);
  for (const replica of replicas) {
    t.same(await readStore(replica, 0, 150), Buffer.concat([filled(50, 1), filled(100, 2)]));
    t.same(replica.applied.filter((entry) => entry.startsWith('write@0') || entry.startsWith('write@50')), [
      'write@0+100:1',
      'write@50+100:2',
    ]);
  }
});

t.test('a flush reaches the replicas only after earlier writes were answered by every replica (invariant 4)', async (t) => {
  const { volume, replicas } = makeVolume();
  replicas[1]?.hold();
  const writing = volume.write(0, filled(100, 1));
  await settle();
  let flushed = false;
  const flushing = volume.flush().then(() => {
    flushed = true;
  });
  await settle();
  // The fast replica must not run two flushes past a write the slow one has not got yet:
  // it would clear the region from its activity log while the slow one never marked it.
  t.equal(replicas[0]?.calls.flush, 0, 'no flush dispatched while the write is still travelling to r1');
  t.notOk(flushed);
  replicas[1]?.release();
  await Promise.all([writing, flushing]);
  t.same(
    replicas.map((replica) => replica.calls.flush),
    replicas.map(() => 1),
    'then the flush went to every replica',
  );
});

t.test('trim and write-zeroes fan out; fast zero is refused before any replica is touched', async (t) => {
  const { volume, replicas } = makeVolume();
  await volume.write(0, filled(8192, 9));
  await volume.trim(0, 4096);
  await volume.writeZeroes(4096, 100, { noHole: true });
  for (const replica of replicas) {
    t.same(await readStore(replica, 0, 4196), Buffer.alloc(4196));
  }
  const zeroCalls = replicas[0]?.calls.writeZeroes;
  await t.rejects(volume.writeZeroes(0, 10, { fastZero: true, noHole: true }), { code: 'NOT_SUPPORTED' });
  t.equal(replicas[0]?.calls.writeZeroes, zeroCalls);
  await volume.writeZeroes(0, 4096, { fastZero: true });
});

t.test('requests are validated at the edge', async (t) => {
  const { volume } = makeVolume();
  await t.rejects(volume.write(1024 * 1024 - 1, filled(2, 1)), { code: 'OUT_OF_RANGE' });
  await t.rejects(volume.read(-1, Buffer.alloc(1)), { code: 'OUT_OF_RANGE' });
  await t.rejects(volume.trim(0, 1024 * 1024 + 1), { code: 'OUT_OF_RANGE' });
  const readOnly = makeVolume({ volume: { readOnly: true } });
  await t.rejects(readOnly.volume.write(0, filled(1, 1)), { code: 'READ_ONLY' });
});

t.test('in-flight requests are bounded', async (t) => {
  const { volume, replicas } = makeVolume({ volume: { maxInFlight: 1, maxWaiting: 1 } });
  replicas[0]?.hold();
  const first = volume.write(0, filled(1, 1));
  const second = volume.write(10, filled(1, 1));
  await t.rejects(volume.write(20, filled(1, 1)), { code: 'BUSY' });
  replicas[0]?.release();
  await Promise.all([first, second]);
});
