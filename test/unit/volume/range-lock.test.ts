import t from 'tap';
import { RangeLock } from '../../../blockdev/volume/range-lock.js';

t.test('overlapping ranges are granted one after another, in arrival order', async (t) => {
  const lock = new RangeLock();
  const order: string[] = [];
  const releaseA = await lock.acquire(0, 100);
  const b = lock.acquire(50, 100).then((release) => {
    order.push('b');
    return release;
  });
  const c = lock.acquire(120, 10).then((release) => {
    order.push('c');
    return release;
  });
  await Promise.resolve();
  t.same(order, [], 'b waits for a, c waits for b (it overlaps b, which arrived first)');
  releaseA();
  const releaseB = await b;
  t.same(order, ['b']);
  releaseB();
  (await c)();
  t.same(order, ['b', 'c']);
  t.equal(lock.size(), 0, 'every entry is gone after release');
});

t.test('disjoint ranges and empty ranges do not wait', async (t) => {
  const lock = new RangeLock();
  const first = await lock.acquire(0, 10);
  const second = await lock.acquire(10, 10);
  const empty = await lock.acquire(5, 0);
  t.equal(lock.size(), 3);
  first();
  second();
  empty();
  first(); // releasing twice is harmless
  t.equal(lock.size(), 0);
});

t.test('the lock is bounded', async (t) => {
  const lock = new RangeLock({ maxEntries: 2 });
  const a = await lock.acquire(0, 1);
  const b = await lock.acquire(1, 1);
  await t.rejects(lock.acquire(2, 1), { code: 'BUSY' });
  a();
  b();
});

t.test('withRange releases when the section throws', async (t) => {
  const lock = new RangeLock();
  await t.rejects(
    lock.withRange(0, 10, async () => {
      throw new Error('boom');
    }),
    { message: 'boom' },
  );
  t.equal(lock.size(), 0);
});
