import { computeProof, HANDSHAKE_NONCE_BYTES, type ProofInput, verifyProof } from '../../consensus/transport/handshake.js';
import type { HelloChallenge, HelloGreeting } from './replica-payloads.js';

/**
 * HELLO on the replication port: the same mutual HMAC challenge as the Raft
 * peer port (consensus/transport/handshake.ts), carried in HELLO frames.
 * Each side MACs a nonce chosen by the other, so a recorded handshake cannot
 * be replayed; role labels keep a proof from being reflected.
 *
 *   dialer   → acceptor : HELLO            { nonce_d, nodeId_d }
 *   acceptor → dialer   : OK               { nonce_a, proof_a, nodeId_a }
 *   dialer   → acceptor : HELLO+HELLO_PROOF { proof_d }
 *   acceptor → dialer   : OK               {}
 *
 * Pure: nonces are handed in.
 */

export interface AcceptorStep {
  readonly challenge: HelloChallenge;
  /** Checks the dialer's proof (constant time). */
  readonly verifyDialerProof: (proof: Buffer) => boolean;
}

export function acceptorStep(secret: Buffer, acceptorNodeId: string, greeting: HelloGreeting, acceptorNonce: Buffer): AcceptorStep {
  const base: Omit<ProofInput, 'role'> = {
    secret,
    dialerNodeId: greeting.nodeId,
    acceptorNodeId,
    dialerNonce: greeting.nonce,
    acceptorNonce,
  };
  return {
    challenge: { nodeId: acceptorNodeId, nonce: acceptorNonce, proof: computeProof({ ...base, role: 'acceptor' }) },
    verifyDialerProof: (proof) => verifyProof({ ...base, role: 'dialer' }, proof),
  };
}

/** The dialer's proof, or undefined when the acceptor's proof is wrong (it does not know the secret). */
export function dialerStep(secret: Buffer, greeting: HelloGreeting, challenge: HelloChallenge): Buffer | undefined {
  if (challenge.nonce.length !== HANDSHAKE_NONCE_BYTES) return undefined;
  const base: Omit<ProofInput, 'role'> = {
    secret,
    dialerNodeId: greeting.nodeId,
    acceptorNodeId: challenge.nodeId,
    dialerNonce: greeting.nonce,
    acceptorNonce: challenge.nonce,
  };
  if (!verifyProof({ ...base, role: 'acceptor' }, challenge.proof)) return undefined;
  return computeProof({ ...base, role: 'dialer' });
}
