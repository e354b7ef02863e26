/**
 * Mutual authentication of Raft peers with the cluster secret (issue 3,
 * "peers authenticated by an HMAC challenge on connect"). Each side proves it
 * knows the secret by MACing a nonce chosen by the *other* side, so a
 * recorded handshake cannot be replayed. The role label differs per side so a
 * proof cannot be reflected back at its sender.
 *
 *   dialer   → acceptor : Hello     { nodeId, nonce_d }
 *   acceptor → dialer   : Challenge { nodeId, nonce_a, proof_a = HMAC(k, "acceptor" | nonce_d | nonce_a | ids) }
 *   dialer   → acceptor : Proof     { proof_d = HMAC(k, "dialer" | nonce_a | nonce_d | ids) }
 *
 * Pure: nonces are handed in (the shell draws them from crypto.randomBytes).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const HANDSHAKE_NONCE_BYTES = 32;
const PROTOCOL_LABEL = 'plinth-raft-handshake-v1';

export type HandshakeRole = 'dialer' | 'acceptor';

export interface ProofInput {
  readonly secret: Buffer;
  /** Whose proof this is. */
  readonly role: HandshakeRole;
  readonly dialerNodeId: string;
  readonly acceptorNodeId: string;
  readonly dialerNonce: Uint8Array;
  readonly acceptorNonce: Uint8Array;
}

export function computeProof(input: ProofInput): Buffer {
  const hmac = createHmac('sha256', input.secret);
  hmac.update(`${PROTOCOL_LABEL}\0${input.role}\0`);
  // The nonce the prover did NOT choose comes first: it is the challenge.
  const [challenge, own] =
    input.role === 'acceptor' ? [input.dialerNonce, input.acceptorNonce] : [input.acceptorNonce, input.dialerNonce];
  hmac.update(challenge);
  hmac.update(own);
  hmac.update(`\0${input.dialerNodeId}\0${input.acceptorNodeId}`);
  return hmac.digest();
}

/** Constant-time check of a peer's proof. */
export function verifyProof(input: ProofInput, proof: Uint8Array): boolean {
  const expected = computeProof(input);
  return proof.length === expected.length && timingSafeEqual(expected, proof);
}

export function isValidNonce(nonce: Uint8Array): boolean {
  return nonce.length === HANDSHAKE_NONCE_BYTES;
}
