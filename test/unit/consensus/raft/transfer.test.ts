/** Thesis §3.10 leadership transfer via TimeoutNow. */
import t from 'tap';
import { Harness } from './raft-harness.js';

t.test('transfer to an up-to-date follower', async (t) => {
  const h = new Harness(['a', 'b', 'c']);
  h.campaign('a');
  h.core('a').transferLeadership('b');
  h.deliver();
  t.same(h.leaders(), ['b']);
  t.equal(h.core('a').status().leaderId, 'b');
});

t.test('transfer to a lagging follower catches it up first; proposals are refused meanwhile', async (t) => {
  const h = new Harness(['a', 'b', 'c']);
  h.campaign('a');
  h.isolate('c');
  for (let i = 0; i < 5; i++) h.core('a').propose(Buffer.from(`v${i}`));
  h.deliver();
  h.heal();
  h.core('a').transferLeadership('c');
  t.throws(() => h.core('a').propose(Buffer.from('no')), { code: 'RAFT_TRANSFER_IN_PROGRESS' });
  h.deliver();
  t.same(h.leaders(), ['c']);
  t.same(h.appliedData('c').slice(0, 5), ['v0', 'v1', 'v2', 'v3', 'v4']);
});

t.test('transfer overrides the leader lease of the other followers', async (t) => {
  const h = new Harness(['a', 'b', 'c'], { checkQuorum: true, preVote: true });
  h.campaign('a');
  h.tick('b', 1);
  h.core('a').transferLeadership('c');
  h.deliver();
  t.same(h.leaders(), ['c']);
});

t.test('a transfer that cannot finish is abandoned after an election timeout', async (t) => {
  const h = new Harness(['a', 'b', 'c'], { checkQuorum: false });
  h.campaign('a');
  h.isolate('c');
  h.core('a').transferLeadership('c');
  t.equal(h.core('a').status().leadershipTransferTarget, 'c');
  h.tick('a', 10);
  h.deliver();
  t.equal(h.core('a').status().leadershipTransferTarget, null);
  h.core('a').propose(Buffer.from('ok-again'));
  t.throws(() => h.core('a').transferLeadership('zz'), { code: 'INVALID_ARGUMENT' });
  t.throws(() => h.core('b').transferLeadership('a'), { code: 'NOT_LEADER' });
});
