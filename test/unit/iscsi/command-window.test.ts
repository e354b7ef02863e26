import t from 'tap';
import { CommandWindow, serialLessThan } from '../../../blockdev/iscsi/command-window.js';

/** CmdSN/ExpCmdSN/MaxCmdSN (RFC 7143 §4.2.2.1) with serial arithmetic (RFC 1982). */

t.test('serial arithmetic wraps', async (t) => {
  t.ok(serialLessThan(0xffffffff, 0));
  t.ok(serialLessThan(5, 6));
  t.notOk(serialLessThan(6, 5));
  t.notOk(serialLessThan(7, 7));
});

t.test('in-order commands run; duplicates and commands beyond MaxCmdSN are ignored', async (t) => {
  const window = new CommandWindow<string>({ depth: 4, initialCmdSN: 10 });
  t.equal(window.expCmdSN(), 10);
  t.equal(window.maxCmdSN(), 13);
  t.same(window.admit(10, 'a'), { kind: 'run', ready: ['a'] });
  t.equal(window.expCmdSN(), 11);
  t.same(window.admit(10, 'again'), { kind: 'ignored', reason: 'duplicate' });
  t.same(window.admit(20, 'far'), { kind: 'ignored', reason: 'outside-window' });
});

t.test('commands ahead of a gap wait and run in CmdSN order once it fills', async (t) => {
  const window = new CommandWindow<string>({ depth: 8, initialCmdSN: 1 });
  t.same(window.admit(3, 'c'), { kind: 'queued' });
  t.same(window.admit(2, 'b'), { kind: 'queued' });
  t.same(window.admit(3, 'c2'), { kind: 'ignored', reason: 'duplicate' });
  t.same(window.admit(1, 'a'), { kind: 'run', ready: ['a', 'b', 'c'] });
  t.equal(window.expCmdSN(), 4);
});

t.test('admitNext admits the next command in order; anything else is left to admit()', async (t) => {
  const window = new CommandWindow<string>({ depth: 4, initialCmdSN: 10 });
  t.ok(window.admitNext(10), 'ExpCmdSN: admitted');
  t.equal(window.expCmdSN(), 11);
  t.equal(window.inFlight(), 1);
  t.notOk(window.admitNext(10), 'a duplicate is not');
  t.notOk(window.admitNext(12), 'nor one ahead of a gap');
  t.same(window.admit(12, 'c'), { kind: 'queued' });
  t.notOk(window.admitNext(11), 'nor the next one while a later one waits: admit() releases both in order');
  t.same(window.admit(11, 'b'), { kind: 'run', ready: ['b', 'c'] });
  t.equal(window.inFlight(), 3);
  window.complete();
  t.equal(window.inFlight(), 2);
});

t.test('MaxCmdSN bounds commands in flight and never moves backwards', async (t) => {
  const window = new CommandWindow<number>({ depth: 2, initialCmdSN: 0 });
  window.admit(0, 0);
  window.admit(1, 1);
  t.equal(window.inFlight(), 2);
  t.equal(window.maxCmdSN(), 1, 'both slots busy: nothing new may be sent');
  t.same(window.admit(2, 2), { kind: 'ignored', reason: 'outside-window' });
  window.complete();
  t.equal(window.maxCmdSN(), 2, 'a completion opens one slot');
  window.complete();
  t.equal(window.maxCmdSN(), 3);
  t.ok(window.startImmediate());
  t.ok(window.startImmediate());
  t.notOk(window.startImmediate(), 'immediate commands are bounded by the depth too');
  t.equal(window.maxCmdSN(), 3, 'MaxCmdSN does not go back');
});

t.test('the window wraps past 2^32', async (t) => {
  const window = new CommandWindow<string>({ depth: 4, initialCmdSN: 0xfffffffe });
  t.same(window.admit(0xfffffffe, 'a'), { kind: 'run', ready: ['a'] });
  t.same(window.admit(0xffffffff, 'b'), { kind: 'run', ready: ['b'] });
  t.same(window.admit(0, 'c'), { kind: 'run', ready: ['c'] });
  t.equal(window.expCmdSN(), 1);
});
