import t from 'tap';
import { CoalescedTask } from '../../../blockdev/pool/coalesced-task.js';

/** One run in flight; callers during a run share exactly one next run. */

function deferred(): { promise: Promise<void>; resolve: () => void; reject: (err: Error) => void } {
  let resolve: () => void = () => undefined;
  let reject: (err: Error) => void = () => undefined;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

t.test('callers during a run wait for one shared next run', async (t) => {
  const gates: ReturnType<typeof deferred>[] = [];
  const task = new CoalescedTask(() => {
    const gate = deferred();
    gates.push(gate);
    return gate.promise;
  });
  const first = task.run();
  t.equal(gates.length, 1);
  const second = task.run();
  const third = task.run();
  t.equal(second, third, 'piggy-backed on the same next run');
  t.equal(gates.length, 1, 'no second run while the first is in flight');
  gates[0]?.resolve();
  await first;
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(gates.length, 2, 'the next run started after the first settled');
  gates[1]?.resolve();
  await second;
  t.notOk(task.busy);
  const fourth = task.run();
  t.equal(gates.length, 3, 'idle again: runs immediately');
  gates[2]?.resolve();
  await fourth;
});

t.test('a failed run fails its callers only; the next run still happens', async (t) => {
  const gates: ReturnType<typeof deferred>[] = [];
  const task = new CoalescedTask(() => {
    const gate = deferred();
    gates.push(gate);
    return gate.promise;
  });
  const first = task.run();
  const second = task.run();
  gates[0]?.reject(new Error('EIO'));
  await t.rejects(first, { message: 'EIO' });
  await new Promise((resolve) => setImmediate(resolve));
  gates[1]?.resolve();
  await second;
  t.equal(gates.length, 2);
});
