import t from 'tap';
import pino from 'pino';
import { PeriodicPass } from '../../../daemon/lifecycle/periodic-pass.js';

const logger = pino({ level: 'silent' });

t.test('passes never overlap; a due pass while one runs is reported and shares it', async (t) => {
  let release: () => void = () => undefined;
  let passes = 0;
  let overlaps = 0;
  const loop = new PeriodicPass(
    1000,
    async () => {
      passes += 1;
      await new Promise<void>((resolve) => {
        release = resolve;
      });
    },
    { logger, onOverlap: () => (overlaps += 1) },
  );
  const first = loop.run();
  const second = loop.run();
  t.equal(first, second, 'the running pass is shared');
  t.equal(passes, 1);
  t.equal(overlaps, 1);
  t.ok(loop.running);
  release();
  await first;
  t.notOk(loop.running);
  const third = loop.run();
  release();
  await third;
  t.equal(passes, 2, 'the next call runs a new pass');
});

t.test('the timer drives passes, a failing pass is logged and the next one still runs, close waits', async (t) => {
  let tick: () => void = () => undefined;
  let cleared = false;
  const errors: string[] = [];
  const captured = pino({ level: 'error' }, { write: (line: string) => errors.push(line) });
  let calls = 0;
  const loop = new PeriodicPass(
    50,
    async () => {
      calls += 1;
      if (calls === 1) throw new Error('first pass broke');
    },
    {
      logger: captured,
      setInterval: (callback) => {
        tick = callback;
        return setTimeout(() => undefined, 0);
      },
      clearInterval: () => {
        cleared = true;
      },
    },
  );
  loop.start();
  tick();
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(calls, 1);
  t.match(errors.join(''), /first pass broke/, 'the escaped failure is logged');
  tick();
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(calls, 2, 'the next pass ran');
  await loop.close();
  t.ok(cleared, 'close stops the timer');
  await loop.run();
  t.equal(calls, 2, 'no pass after close');
});
