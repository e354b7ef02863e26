/** Thesis §6.4 ReadIndex: linearizable reads without writing to the log. */
import t from 'tap';
import { Harness } from './raft-harness.js';

t.test('ReadIndex: released after a quorum of heartbeat acks, at the commit index', async (t) => {
  const h = new Harness(['a', 'b', 'c']);
  h.campaign('a');
  h.core('a').propose(Buffer.from('w'));
  h.deliver();
  const commit = h.core('a').status().commitIndex;
  h.core('a').readIndex(Buffer.from('r1'));
  h.processReadies();
  t.same(h.node('a').readStates, [], 'not before the heartbeat round');
  t.ok(h.inFlight.some((m) => m.type === 'heartbeat' && m.context?.toString() === 'r1'));
  h.deliver();
  t.same(h.node('a').readStates.map((r) => [r.index, r.context.toString()]), [[commit, 'r1']]);
});

t.test('ReadIndex: a partitioned leader cannot confirm leadership', async (t) => {
  const h = new Harness(['a', 'b', 'c'], { checkQuorum: false });
  h.campaign('a');
  h.isolate('a');
  h.core('a').readIndex(Buffer.from('stale'));
  for (let i = 0; i < 5; i++) {
    h.tick('a');
    h.deliver();
  }
  t.same(h.node('a').readStates, []);
});

t.test('ReadIndex: waits until the new leader committed an entry of its term', async (t) => {
  // a wins the election, but its appends (and so its no-op) are held back.
  const h2 = new Harness(['a', 'b', 'c']);
  h2.tick('a', 20);
  h2.deliver((m) => m.type !== 'append' && m.type !== 'append-response');
  t.equal(h2.core('a').status().role, 'leader');
  h2.core('a').readIndex(Buffer.from('early'));
  h2.deliver((m) => m.type !== 'append' && m.type !== 'append-response');
  t.same(h2.node('a').readStates, [], 'no read before the current-term commit');
  h2.tick('a', 2);
  h2.deliver();
  t.equal(h2.node('a').readStates.length, 1);
  t.equal(h2.node('a').readStates[0]?.index, h2.core('a').status().commitIndex);
  t.throws(() => h2.core('b').readIndex(Buffer.from('x')), { code: 'NOT_LEADER' });
});

t.test('ReadIndex: a single-voter leader answers at once; pending reads are bounded', async (t) => {
  const solo = new Harness(['s']);
  solo.campaign('s');
  solo.core('s').readIndex(Buffer.from('q'));
  solo.processReadies();
  t.equal(solo.node('s').readStates.length, 1);
  const h = new Harness(['a', 'b', 'c'], { maxPendingReads: 2 });
  h.campaign('a');
  h.isolate('a');
  h.core('a').readIndex(Buffer.from('1'));
  h.core('a').readIndex(Buffer.from('2'));
  t.throws(() => h.core('a').readIndex(Buffer.from('3')), { code: 'RAFT_PROPOSAL_DROPPED' });
});
