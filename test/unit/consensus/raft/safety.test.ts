/** Raft §5.4: the election restriction and the commit rule of §5.4.2 (Figure 8). */
import t from 'tap';
import type { Message, RaftCanary } from '../../../../consensus/raft/index.js';
import { Harness } from './raft-harness.js';

const ids = ['s1', 's2', 's3', 's4', 's5'];

function electWith(h: Harness, id: string, filter: (m: Message) => boolean): void {
  for (let round = 0; round < 5 && h.core(id).status().role !== 'leader'; round++) {
    h.tick(id, 20);
    h.deliver(filter);
  }
}

/**
 * Figure 8: s1 (term 2) replicates X at index 3 to s2 only; s5 wins term 3
 * without X; s1 returns, wins a later term and copies X to s3 — X is now on a
 * majority but was written in an older term. Counting replicas must NOT commit
 * it: s5 could still win and overwrite it.
 */
function figure8(canary?: RaftCanary): Harness {
  const h = new Harness(ids, {
    preVote: false,
    checkQuorum: false,
    maxMessageBytes: 30,
    ...(canary === undefined ? {} : { canary }),
  });
  h.campaign('s1');
  h.isolate('s1');
  h.cut.delete('s1->s2');
  h.cut.delete('s2->s1');
  h.core('s1').propose(Buffer.from('X'));
  h.deliver();
  h.heal();
  h.isolate('s1');
  h.isolate('s2');
  h.restart('s5');
  // s5 wins term 3 but its own no-op at index 3 never leaves it.
  electWith(h, 's5', (m) => !(m.type === 'append' && m.from === 's5' && m.entries.length > 0));
  h.heal();
  h.isolate('s5');
  h.restart('s1');
  // s1 restarts and wins a later term; its entries of that term never reach anyone.
  // (Appends the follower would reject still go through, so s1 learns where logs diverge.)
  electWith(h, 's1', (m) => {
    if (m.type !== 'append' || !m.entries.some((e) => e.term === h.core('s1').status().term)) return true;
    return h.core(m.to).entryTerm(m.prevLogIndex) !== m.prevLogTerm;
  });
  return h;
}

t.test('§5.4.2 figure 8: an old-term entry on a majority is not committed by counting', async (t) => {
  const h = figure8();
  t.equal(h.core('s1').status().role, 'leader');
  t.equal(h.core('s5').entryTerm(3), 3, 's5 holds a term-3 entry at index 3');
  for (const id of ['s1', 's2', 's3']) t.equal(h.core(id).entryTerm(3), 2, `${id} holds X (term 2) at index 3`);
  t.equal(h.core('s1').status().commitIndex, 2, 'X is not committed');
  // Once an entry of the current term reaches a majority, X commits with it (indirectly).
  h.tick('s1', 2);
  h.deliver();
  t.ok(h.core('s1').status().commitIndex >= 4);
  t.same(h.appliedData('s3'), ['X']);
});

t.test('§5.4.2 figure 8 with the commit-previous-term canary commits X too early', async (t) => {
  const h = figure8('commit-previous-term');
  t.equal(h.core('s1').status().commitIndex, 3, 'the planted bug commits X by counting');
});

t.test('§5.4.1 the election restriction: the vote canary lets a stale candidate win', async (t) => {
  for (const canary of [undefined, 'vote-without-log-check'] as const) {
    const h = new Harness(['a', 'b', 'c'], { preVote: false, checkQuorum: false, ...(canary === undefined ? {} : { canary }) });
    h.campaign('a');
    h.isolate('c');
    h.core('a').propose(Buffer.from('committed'));
    h.deliver();
    t.same(h.appliedData('b'), ['committed']);
    h.heal();
    h.isolate('a');
    h.campaign('c');
    const cWon = h.core('c').status().role === 'leader';
    t.equal(cWon, canary !== undefined, `canary=${String(canary)}: stale c ${cWon ? 'won' : 'lost'}`);
  }
});
