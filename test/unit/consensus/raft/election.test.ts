/** Raft §5.2 leader election and §5.4.1 the election restriction. */
import t from 'tap';
import { Harness } from './raft-harness.js';

t.test('§5.2 a follower times out, wins a majority and becomes leader', async (t) => {
  const h = new Harness(['a', 'b', 'c'], { preVote: false });
  h.campaign('a');
  t.same(h.leaders(), ['a']);
  t.equal(h.core('a').status().term, 2);
  t.equal(h.core('b').status().leaderId, 'a');
  t.equal(h.core('c').status().leaderId, 'a');
});

t.test('§5.2 each server votes for at most one candidate per term', async (t) => {
  const h = new Harness(['a', 'b', 'c'], { preVote: false });
  h.isolate('a');
  h.isolate('b');
  h.tick('a', 20);
  h.tick('b', 20);
  // Both are candidates in term 2; c hears a first, then b.
  h.heal();
  h.deliver((m) => m.from !== 'b' || m.type !== 'vote');
  t.same(h.leaders(), ['a']);
  t.equal(h.core('c').status().leaderId, 'a');
});

t.test('§5.2 election timeouts are randomized in [T, 2T)', async (t) => {
  const h = new Harness(['a', 'b', 'c'], { preVote: false });
  let firstTick = -1;
  for (let i = 1; i <= 20 && firstTick < 0; i++) {
    h.tick('a');
    h.processReadies();
    if (h.inFlight.length > 0) firstTick = i;
  }
  t.ok(firstTick >= 10 && firstTick < 20, `campaign started at tick ${firstTick}`);
});

t.test('§5.4.1 a candidate with a stale log cannot win', async (t) => {
  const h = new Harness(['a', 'b', 'c'], { preVote: false });
  h.campaign('a');
  h.isolate('c');
  h.core('a').propose(Buffer.from('x'));
  h.deliver();
  t.same(h.appliedData('b'), ['x']);
  h.heal();
  h.isolate('a');
  h.cut.delete('c->b');
  h.cut.delete('b->c');
  h.campaign('c');
  t.not(h.core('c').status().role, 'leader', 'c lacks a committed entry, b refuses');
  // b may need a second round: c already voted for itself in c's term.
  for (let round = 0; round < 3 && h.core('b').status().role !== 'leader'; round++) h.campaign('b');
  t.same(h.leaders().filter((id) => id !== 'a'), ['b']);
  t.equal(h.core('c').status().leaderId, 'b');
});

t.test('a single-voter cluster elects itself and commits alone', async (t) => {
  const h = new Harness(['solo']);
  h.campaign('solo');
  t.same(h.leaders(), ['solo']);
  h.core('solo').propose(Buffer.from('one'));
  h.deliver();
  t.same(h.appliedData('solo'), ['one']);
});

t.test('a learner or a non-member never campaigns', async (t) => {
  const h = new Harness(['a', 'b', 'c']);
  const joiner = h.addNode('d', { hardState: { term: 0, vote: null, commit: 0 }, snapshot: null, entries: [] });
  h.tick('d', 100);
  h.processReadies();
  t.equal(h.inFlight.length, 0);
  t.equal(joiner.core.status().term, 0);
});
