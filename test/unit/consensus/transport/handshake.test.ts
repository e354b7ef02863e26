import t from 'tap';
import { randomBytes } from 'node:crypto';
import { computeProof, verifyProof, type ProofInput } from '../../../../consensus/transport/handshake.js';

const base: ProofInput = {
  secret: Buffer.from('cluster-secret'),
  role: 'dialer',
  dialerNodeId: 'n1',
  acceptorNodeId: 'n2',
  dialerNonce: randomBytes(32),
  acceptorNonce: randomBytes(32),
};

t.test('a proof verifies only with the same secret, nonces, ids and role', async (t) => {
  const proof = computeProof(base);
  t.ok(verifyProof(base, proof));
  t.notOk(verifyProof({ ...base, secret: Buffer.from('other-secret') }, proof), 'wrong secret');
  t.notOk(verifyProof({ ...base, acceptorNonce: randomBytes(32) }, proof), 'replayed against a new challenge');
  t.notOk(verifyProof({ ...base, role: 'acceptor' }, proof), 'reflected to the other role');
  t.notOk(verifyProof({ ...base, dialerNodeId: 'n3' }, proof), 'other identity');
  t.notOk(verifyProof(base, proof.subarray(1)), 'truncated proof');
});
