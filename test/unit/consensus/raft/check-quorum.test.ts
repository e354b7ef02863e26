/** Thesis §6.2 check-quorum and the leader lease it gives followers (§4.2.3). */
import t from 'tap';
import { Harness } from './raft-harness.js';

t.test('check-quorum: a leader that cannot reach a majority steps down', async (t) => {
  const h = new Harness(['a', 'b', 'c'], { checkQuorum: true });
  h.campaign('a');
  h.isolate('a');
  for (let i = 0; i < 25; i++) {
    h.tick('a');
    h.deliver();
  }
  t.equal(h.core('a').status().role, 'follower');
  t.throws(() => h.core('a').propose(Buffer.from('x')), { code: 'NOT_LEADER' });
});

t.test('check-quorum: a leader with a majority stays', async (t) => {
  const h = new Harness(['a', 'b', 'c'], { checkQuorum: true });
  h.campaign('a');
  h.isolate('c');
  for (let i = 0; i < 50; i++) {
    h.tick('a');
    h.tick('b');
    h.deliver();
  }
  t.same(h.leaders(), ['a']);
});

t.test('leader lease: followers ignore vote requests while they hear from a leader', async (t) => {
  const h = new Harness(['a', 'b', 'c'], { checkQuorum: true, preVote: false });
  h.campaign('a');
  const term = h.core('a').status().term;
  // c cannot hear the leader, so it campaigns; b hears the leader and ignores c.
  h.cut.add('a->c');
  for (let i = 0; i < 30; i++) {
    h.tick('c');
    h.tick('a');
    h.tick('b');
    h.deliver();
  }
  t.equal(h.core('b').status().term, term, 'b did not move to c’s term');
  t.equal(h.core('b').status().leaderId, 'a');
  t.ok(h.core('c').status().term > term);
});
