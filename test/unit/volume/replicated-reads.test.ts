import t from 'tap';
import { filled, makeVolume } from './helpers/volume-fixture.js';

t.test('reads go to the local in-sync replica first', async (t) => {
  const { volume, replicas } = makeVolume({ localIndex: 2 });
  await volume.write(0, filled(10, 4));
  const target = Buffer.alloc(10);
  await volume.read(0, target);
  t.same(target, filled(10, 4));
  t.same(
    replicas.map((replica) => replica.calls.read),
    [0, 0, 1],
  );
});

t.test('a failed read retries on another replica and reports the failing one', async (t) => {
  const { volume, replicas, control } = makeVolume({ localIndex: 0 });
  await volume.write(0, filled(10, 5));
  replicas[0]?.failFromNow(undefined, ['read']);
  const target = Buffer.alloc(10);
  await volume.read(0, target);
  t.same(target, filled(10, 5));
  t.equal(replicas[1]?.calls.read, 1, 'the next replica by id answered');
  await volume.flush(); // waits for nothing, but lets the report settle in order
  t.same(control.reports, ['r0']);
  t.equal(volume.replicaStatuses()[0]?.state, 'faulted');
});

t.test('a read fails with IO_ERROR only when every in-sync replica failed it', async (t) => {
  const { volume, replicas } = makeVolume({ replicaCount: 2 });
  for (const replica of replicas) replica.failFromNow(undefined, ['read']);
  await t.rejects(volume.read(0, Buffer.alloc(10)), { code: 'IO_ERROR' });
});

t.test('block status comes from an in-sync replica and capabilities are the intersection', async (t) => {
  const { volume } = makeVolume();
  await volume.write(0, filled(4096, 1));
  const runs = await volume.blockStatus(0, 8192);
  t.same(runs, [
    { lengthBytes: 4096, hole: false, zero: false },
    { lengthBytes: 4096, hole: true, zero: true },
  ]);
  t.equal(volume.capabilities.multiConn, true);
  t.equal(volume.capabilities.trim, true);
  t.equal(volume.sizeBytes, 1024 * 1024);
});

t.test('pause drains in-flight I/O; new I/O waits until resume; close drains and refuses', async (t) => {
  const { volume, replicas } = makeVolume();
  replicas[0]?.hold();
  const inFlight = volume.write(0, filled(10, 1));
  let paused = false;
  const pausing = volume.pause().then(() => {
    paused = true;
  });
  let laterDone = false;
  const later = volume.write(100, filled(10, 2)).then(() => {
    laterDone = true;
  });
  for (let round = 0; round < 20; round += 1) await Promise.resolve();
  t.notOk(paused, 'pause waits for the in-flight write');
  replicas[0]?.release();
  await pausing;
  await inFlight;
  t.notOk(laterDone, 'new I/O waits while paused');
  volume.resume();
  await later;
  replicas[1]?.hold();
  const last = volume.write(200, filled(10, 3));
  let closed = false;
  const closing = volume.close().then(() => {
    closed = true;
  });
  for (let round = 0; round < 20; round += 1) await Promise.resolve();
  t.notOk(closed, 'close drains the in-flight write');
  await t.rejects(volume.read(0, Buffer.alloc(1)), { code: 'SHUTTING_DOWN' });
  replicas[1]?.release();
  await last;
  await closing;
});
