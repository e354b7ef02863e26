/** Thesis §9.6 pre-vote: a partitioned server cannot inflate terms and disrupt the cluster. */
import t from 'tap';
import { Harness } from './raft-harness.js';

t.test('pre-vote: an isolated follower does not raise its term', async (t) => {
  const h = new Harness(['a', 'b', 'c'], { preVote: true });
  h.campaign('a');
  const term = h.core('a').status().term;
  h.isolate('c');
  for (let i = 0; i < 10; i++) {
    h.tick('c', 20);
    h.tick('a', 1);
    h.deliver();
  }
  t.equal(h.core('c').status().term, term, 'only pre-votes, no term bump');
  t.equal(h.core('c').status().role, 'pre-candidate');
  h.heal();
  h.tick('a', 2);
  h.deliver();
  t.same(h.leaders(), ['a'], 'the leader survives the rejoin');
  t.equal(h.core('a').status().term, term);
  t.equal(h.core('c').status().leaderId, 'a');
});

t.test('without pre-vote the same isolation deposes the leader (control)', async (t) => {
  const h = new Harness(['a', 'b', 'c'], { preVote: false, checkQuorum: false });
  h.campaign('a');
  const term = h.core('a').status().term;
  h.isolate('c');
  h.tick('c', 40);
  h.heal();
  h.tick('a', 1);
  h.deliver();
  t.ok(h.core('a').status().term > term, 'the rejoining node forced a new term');
});

t.test('pre-vote: a pre-candidate wins and then holds a real election', async (t) => {
  const h = new Harness(['a', 'b', 'c'], { preVote: true });
  const types: string[] = [];
  h.tick('a', 20);
  h.deliver((m) => {
    types.push(m.type);
    return true;
  });
  t.same(h.leaders(), ['a']);
  t.ok(types.indexOf('pre-vote') < types.indexOf('vote'), 'pre-vote round first');
  t.equal(h.core('a').status().term, 2, 'exactly one term increment');
});
