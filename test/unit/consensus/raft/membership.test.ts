/** Raft §6 / thesis §4.1: membership changes one server at a time. */
import t from 'tap';
import { emptyState } from '../../../../consensus/raft/index.js';
import { Harness } from './raft-harness.js';

function settle(h: Harness, leader: string, rounds = 5): void {
  for (let i = 0; i < rounds; i++) {
    h.tick(leader, 2);
    h.deliver();
  }
}

t.test('§6 add learner → catch up → promote to voter', async (t) => {
  const h = new Harness(['a', 'b', 'c']);
  h.campaign('a');
  for (let i = 0; i < 5; i++) h.core('a').propose(Buffer.from(`v${i}`));
  h.deliver();
  h.addNode('d', emptyState());
  h.core('a').proposeConfChange({ type: 'add-learner', nodeId: 'd' });
  t.same(h.core('a').status().confState.learners, ['d'], 'takes effect on append, before commit');
  t.throws(() => h.core('a').proposeConfChange({ type: 'promote-voter', nodeId: 'd' }), { code: 'RAFT_CONF_CHANGE_PENDING' }, 'one change at a time');
  settle(h, 'a');
  t.same(h.appliedData('d'), ['v0', 'v1', 'v2', 'v3', 'v4'], 'the learner replicated the whole log');
  t.same(h.core('d').status().confState.voters, ['a', 'b', 'c'], 'the joiner learned the membership from the log');
  h.core('a').proposeConfChange({ type: 'promote-voter', nodeId: 'd' });
  settle(h, 'a');
  t.same(h.core('d').status().confState.voters, ['a', 'b', 'c', 'd']);
  // With 4 voters the quorum is 3: a and d alone cannot commit.
  h.isolate('b');
  h.isolate('c');
  const before = h.core('a').status().commitIndex;
  h.core('a').propose(Buffer.from('needs-three'));
  h.deliver();
  t.equal(h.core('a').status().commitIndex, before);
});

t.test('§6 a learner does not vote and does not count toward commit', async (t) => {
  const h = new Harness(['a', 'b', 'c']);
  h.campaign('a');
  h.addNode('d', emptyState());
  h.core('a').proposeConfChange({ type: 'add-learner', nodeId: 'd' });
  settle(h, 'a');
  h.isolate('b');
  h.isolate('c');
  const before = h.core('a').status().commitIndex;
  h.core('a').propose(Buffer.from('x'));
  h.deliver();
  t.equal(h.core('a').status().commitIndex, before, 'a + learner d is not a majority');
  h.tick('d', 100);
  h.processReadies();
  t.notOk(h.inFlight.some((m) => m.from === 'd' && (m.type === 'vote' || m.type === 'pre-vote')), 'learners never campaign');
});

t.test('§6 promoting a learner that has not caught up is refused', async (t) => {
  const h = new Harness(['a', 'b', 'c']);
  h.campaign('a');
  h.addNode('d', emptyState());
  h.isolate('d');
  h.core('a').proposeConfChange({ type: 'add-learner', nodeId: 'd' });
  settle(h, 'a');
  t.throws(() => h.core('a').proposeConfChange({ type: 'promote-voter', nodeId: 'd' }), { code: 'RAFT_LEARNER_BEHIND' });
  t.throws(() => h.core('a').proposeConfChange({ type: 'promote-voter', nodeId: 'zz' }), { code: 'INVALID_ARGUMENT' });
});

t.test('§6 removing a voter; a removed leader steps down once the removal commits', async (t) => {
  const h = new Harness(['a', 'b', 'c']);
  h.campaign('a');
  h.core('a').proposeConfChange({ type: 'remove-node', nodeId: 'c' });
  settle(h, 'a');
  t.same(h.core('b').status().confState.voters, ['a', 'b']);
  h.core('a').proposeConfChange({ type: 'remove-node', nodeId: 'a' });
  t.equal(h.core('a').status().role, 'leader', 'still leads while the removal is uncommitted');
  settle(h, 'a', 1);
  t.not(h.core('a').status().role, 'leader', 'stepped down');
  h.campaign('b');
  t.same(h.leaders(), ['b'], 'the remaining voter takes over alone');
  h.core('b').propose(Buffer.from('after'));
  h.deliver();
  t.same(h.appliedData('b').slice(-1), ['after']);
});

t.test('thesis §4.1: an uncommitted conf change is rolled back when its entry is overwritten', async (t) => {
  const h = new Harness(['a', 'b', 'c'], { preVote: false, checkQuorum: false });
  h.campaign('a');
  h.isolate('a');
  h.core('a').proposeConfChange({ type: 'remove-node', nodeId: 'c' });
  h.deliver();
  t.same(h.core('a').status().confState.voters, ['a', 'b']);
  h.heal();
  h.isolate('a');
  for (let round = 0; round < 3 && h.core('b').status().role !== 'leader'; round++) h.campaign('b');
  h.core('b').propose(Buffer.from('new'));
  h.deliver();
  h.heal();
  h.restart('a');
  settle(h, 'b');
  t.same(h.core('a').status().confState.voters, ['a', 'b', 'c'], 'configuration rolled back with the log');
});
