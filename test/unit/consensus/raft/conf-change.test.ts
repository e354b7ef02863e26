/** Membership change entries: codec and the one-server-at-a-time rules (thesis §4.1). */
import t from 'tap';
import { applyConfChange, confChangeProblem, decodeConfChange, encodeConfChange, EMPTY_CONF_STATE } from '../../../../consensus/raft/index.js';

t.test('conf changes round-trip and garbage is refused', async (t) => {
  for (const change of [
    { type: 'add-learner', nodeId: 'd' },
    { type: 'promote-voter', nodeId: 'd' },
    { type: 'remove-node', nodeId: 'a' },
    { type: 'bootstrap', voters: ['a', 'b'] },
  ] as const) {
    t.same(decodeConfChange(encodeConfChange(change)), change);
  }
  t.throws(() => decodeConfChange(Buffer.from('{"type":"explode","nodeId":"a"}')), { code: 'INVALID_ARGUMENT' });
  t.throws(() => decodeConfChange(Buffer.from('{"type":"add-learner"}')), { code: 'INVALID_ARGUMENT' });
  t.throws(() => decodeConfChange(Buffer.alloc(100_000, 0x20)), { code: 'INVALID_ARGUMENT' });
});

t.test('invalid changes are no-ops so every server derives the same configuration', async (t) => {
  const conf = applyConfChange(EMPTY_CONF_STATE, { type: 'bootstrap', voters: ['a'] });
  t.same(conf, { voters: ['a'], learners: [] });
  t.equal(confChangeProblem(conf, { type: 'remove-node', nodeId: 'a' }), 'cannot remove the last voter');
  t.same(applyConfChange(conf, { type: 'remove-node', nodeId: 'a' }), conf);
  t.same(applyConfChange(conf, { type: 'promote-voter', nodeId: 'x' }), conf);
  const withLearner = applyConfChange(conf, { type: 'add-learner', nodeId: 'b' });
  t.same(applyConfChange(withLearner, { type: 'promote-voter', nodeId: 'b' }), { voters: ['a', 'b'], learners: [] });
});
