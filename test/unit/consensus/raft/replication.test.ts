/** Raft §5.3 log replication: commit, conflict repair with fast back-off, flow control. */
import t from 'tap';
import { Harness } from './raft-harness.js';

t.test('§5.3 entries replicate and commit once a majority stores them', async (t) => {
  const h = new Harness(['a', 'b', 'c']);
  h.campaign('a');
  h.isolate('c');
  const ticket = h.core('a').propose(Buffer.from('one'));
  h.deliver();
  t.equal(h.core('a').status().commitIndex, ticket.index, 'a and b are a majority');
  t.same(h.appliedData('a'), ['one']);
  t.same(h.appliedData('c'), []);
  h.heal();
  h.tick('a', 2);
  h.deliver();
  t.same(h.appliedData('c'), ['one'], 'c catches up after the partition heals');
});

t.test('§5.3 a follower with a conflicting suffix is repaired; back-off skips a whole term', async (t) => {
  const h = new Harness(['a', 'b', 'c'], { preVote: false, checkQuorum: false });
  h.campaign('a');
  // a, cut off, appends 30 uncommitted entries of term 2.
  h.isolate('a');
  for (let i = 0; i < 30; i++) h.core('a').propose(Buffer.from(`lost-${i}`));
  h.deliver();
  // b and c elect b and commit 30 entries of term 3.
  h.heal();
  h.isolate('a');
  for (let round = 0; round < 3 && h.core('b').status().role !== 'leader'; round++) h.campaign('b');
  for (let i = 0; i < 30; i++) h.core('b').propose(Buffer.from(`kept-${i}`));
  h.deliver();
  // c becomes leader with a as its only peer: c's first probe to a lands past a's conflicting suffix.
  h.heal();
  h.isolate('b');
  let rejects = 0;
  const countRejects = (m: { type: string; reject?: boolean }): boolean => {
    if (m.type === 'append-response' && m.reject === true) rejects++;
    return true;
  };
  for (let round = 0; round < 3 && h.core('c').status().role !== 'leader'; round++) {
    h.tick('c', 20);
    h.deliver(countRejects);
  }
  t.equal(h.core('c').status().role, 'leader');
  t.ok(rejects >= 1 && rejects <= 2, `30 conflicting entries resolved with ${rejects} rejection(s)`);
  t.same(h.appliedData('a'), Array.from({ length: 30 }, (_, i) => `kept-${i}`));
  t.equal(h.core('a').status().lastIndex, h.core('c').status().lastIndex);
});

t.test('flow control: at most maxInflightMessages appends in flight, each under maxMessageBytes', async (t) => {
  const h = new Harness(['a', 'b'], { maxInflightMessages: 3, maxMessageBytes: 100 });
  h.campaign('a');
  for (let i = 0; i < 40; i++) h.core('a').propose(Buffer.alloc(30, i));
  h.processReadies();
  const appends = h.inFlight.filter((m) => m.type === 'append' && m.to === 'b');
  t.ok(appends.length <= 3, `${appends.length} appends in flight`);
  for (const m of appends) {
    if (m.type !== 'append') continue;
    const bytes = m.entries.reduce((sum, e) => sum + e.data.length + 24, 0);
    t.ok(m.entries.length === 1 || bytes <= 100, `append of ${bytes} bytes`);
  }
  h.deliver();
  t.equal(h.appliedData('b').length, 40, 'everything arrives eventually');
});

t.test('the leader refuses proposals beyond the uncommitted-bytes limit', async (t) => {
  const h = new Harness(['a', 'b', 'c'], { maxUncommittedBytes: 1000 });
  h.campaign('a');
  h.isolate('a');
  t.throws(() => {
    for (let i = 0; i < 100; i++) h.core('a').propose(Buffer.alloc(100));
  }, { code: 'RAFT_PROPOSAL_DROPPED' });
  t.throws(() => h.core('a').propose(Buffer.alloc(2 * 1024 * 1024)), { code: 'TOO_LARGE' });
  t.throws(() => h.core('b').propose(Buffer.from('x')), { code: 'NOT_LEADER' });
});

t.test('messages go out only in a Ready, after the entries they acknowledge', async (t) => {
  const h = new Harness(['a', 'b', 'c']);
  h.campaign('a');
  h.core('a').propose(Buffer.from('p'));
  const ready = h.core('a').ready();
  t.equal(ready.entries.length, 1, 'the proposal is to be persisted');
  t.ok(ready.messages.some((m) => m.type === 'append'));
  t.notOk(h.core('a').hasReady(), 'no second Ready before advance');
  t.throws(() => h.core('a').ready(), { code: 'INTERNAL' });
  h.node('a').storage.persist(ready);
  h.core('a').advance(ready);
});

t.test('crash before persisting loses only unpersisted state; the node recovers', async (t) => {
  const h = new Harness(['a', 'b', 'c']);
  h.campaign('a');
  h.core('a').propose(Buffer.from('durable'));
  h.deliver();
  h.core('a').propose(Buffer.from('never-persisted'));
  h.restart('a');
  t.equal(h.core('a').status().lastIndex, 3, 'bootstrap, no-op and the durable entry survive');
  t.equal(h.core('a').status().role, 'follower');
  h.campaign('b');
  h.deliver();
  t.same(h.appliedData('a'), ['durable'], 'committed entries are re-applied after restart');
});
