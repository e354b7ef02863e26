import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { PlinthError } from '../../common/plinth-error.js';
import { writePrivate } from '../cluster/cluster-credentials.js';
import { readOptionalFile } from '../lifecycle/node-identity.js';

/**
 * The join token of a TLS cluster (docs/security.md "Joining"): a random
 * secret in `<data-dir>/join-token` (0600) on every member. A joiner has no
 * certificate and no CA yet, so it opens TLS without verifying the member,
 * and both sides prove knowledge of the token bound to *this* TLS session:
 *
 *   proof(role) = HMAC-SHA256(token, "plinth-join-v1" ‖ role ‖ EKM)
 *
 * where EKM is the session's exported keying material (RFC 5705 / RFC 8446
 * §7.5). A man in the middle runs two sessions with different EKMs, so it
 * can neither replay the joiner's proof nor forge the member's without the
 * token: the joiner trusts the CA it receives only after the member's proof
 * checked out, and the member hands out credentials only after the joiner's.
 */
export const JOIN_TOKEN_FILE = 'join-token';
const TOKEN_BYTES = 32;
const EKM_LABEL = 'EXPORTER-plinth-join';
const EKM_BYTES = 32;
const PROOF_LABEL = 'plinth-join-v1\0';

export type JoinProofRole = 'joiner' | 'member';

export function newJoinToken(random: (size: number) => Buffer = randomBytes): string {
  return random(TOKEN_BYTES).toString('hex');
}

export async function readJoinToken(dataDir: string): Promise<string | null> {
  const text = await readOptionalFile(join(dataDir, JOIN_TOKEN_FILE));
  return text === null ? null : parseJoinToken(text, join(dataDir, JOIN_TOKEN_FILE));
}

export async function writeJoinToken(dataDir: string, token: string): Promise<void> {
  await writePrivate(join(dataDir, JOIN_TOKEN_FILE), parseJoinToken(token, 'join token'));
}

/** 64 hex digits; anything else is a typo, refused before any connection is made. */
export function parseJoinToken(text: string, source: string): string {
  const token = text.trim().toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(token)) {
    throw new PlinthError('CONFIG_INVALID', `config: ${source} is not a join token (expected 64 hex digits, as in <data-dir>/join-token)`, { source });
  }
  return token;
}

/** The session-bound value both ends of one TLS connection compute alike. */
export function sessionBinding(socket: TLSSocket): Buffer {
  return socket.exportKeyingMaterial(EKM_BYTES, EKM_LABEL, Buffer.alloc(0));
}

export function joinProof(token: string, role: JoinProofRole, binding: Buffer): string {
  return createHmac('sha256', Buffer.from(token, 'hex')).update(PROOF_LABEL).update(role).update(binding).digest('hex');
}

/** Throws UNAUTHORIZED unless `proof` is `role`'s proof of `token` over this session. */
export function verifyJoinProof(token: string, role: JoinProofRole, binding: Buffer, proof: unknown): void {
  if (typeof proof !== 'string' || proof === '') {
    throw new PlinthError('UNAUTHORIZED', role === 'joiner' ? 'join refused: no join token proof (start the joiner with --join-token, see <data-dir>/join-token on a member)' : 'join: the member sent no join token proof');
  }
  const given = Buffer.from(proof, 'hex');
  const expected = Buffer.from(joinProof(token, role, binding), 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new PlinthError(
      'UNAUTHORIZED',
      role === 'joiner' ? 'join refused: wrong join token' : 'join: the member does not know the join token (wrong token, or not the cluster you meant)',
    );
  }
}
