import t from 'tap';
import { allAnswered, FULFILLED } from '../../../blockdev/volume/all-answered.js';

/** allAnswered (all-answered.ts): the controller's cheap replacement for Promise.allSettled. */

t.test('all fulfilled: undefined, once the last one did', async (t) => {
  let release: () => void = () => undefined;
  const slow = new Promise<void>((resolve) => {
    release = resolve;
  });
  let done = false;
  const answered = allAnswered([Promise.resolve(), slow, Promise.resolve('x')]).then((answers) => {
    done = true;
    return answers;
  });
  await new Promise((resolve) => setImmediate(resolve));
  t.notOk(done, 'waits for the slowest answer');
  release();
  t.equal(await answered, undefined);
  t.equal(await allAnswered([]), undefined, 'nothing to wait for');
});

t.test('a rejection: one entry per promise, in order, and it never rejects', async (t) => {
  const failure = new Error('replica down');
  const answers = await allAnswered([Promise.resolve(), Promise.reject(failure), Promise.resolve(), Promise.reject(undefined)]);
  t.same(answers, [FULFILLED, { reason: failure }, FULFILLED, { reason: undefined }]);
});

t.test('resolves in the reaction of the last answer, like Promise.allSettled', async (t) => {
  // The controller records a write's misses right after the answers; a rebuild waiting on the
  // same promise through Promise.allSettled must only resume after that (rebuildReplica).
  let release: () => void = () => undefined;
  const last = new Promise<void>((resolve) => {
    release = resolve;
  });
  const order: string[] = [];
  const answered = allAnswered([last]);
  const writer = answered.then(() => order.push('writer records misses'));
  const rebuild = Promise.allSettled([answered]).then(() => order.push('rebuild reads misses'));
  release();
  await Promise.all([writer, rebuild]);
  t.same(order, ['writer records misses', 'rebuild reads misses']);
});
