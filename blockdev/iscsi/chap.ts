import { createHash, timingSafeEqual } from 'node:crypto';
import type { TextPair } from './text-keys.js';

/**
 * CHAP for the login security stage (RFC 7143 §12.1.3 over RFC 1994), pure
 * but for the injected random source: one-way (the initiator proves it knows
 * the secret) and mutual (then we prove ours). MD5 (CHAP_A=5) only.
 */

export interface ChapCredentials {
  readonly user: string;
  readonly secret: string;
}

/**
 * Where secrets come from. `targetName` is undefined for discovery
 * sessions. No initiator credentials: this target does not require CHAP.
 */
export interface ChapSecretProvider {
  initiatorCredentials(targetName: string | undefined): ChapCredentials | undefined;
  /** For mutual CHAP: what we answer the initiator's challenge with. */
  targetCredentials(targetName: string | undefined): ChapCredentials | undefined;
}

export interface ChapSecretsConfig {
  /** For discovery sessions. */
  readonly discovery?: ChapPair;
  /** For every target without its own entry. */
  readonly allTargets?: ChapPair;
  /** Per target name (iqn.2026-11.io.plinth:<volume>). */
  readonly targets?: Readonly<Record<string, ChapPair>>;
}

export interface ChapPair {
  readonly initiator?: ChapCredentials;
  readonly target?: ChapCredentials;
}

/** The simple provider: secrets from configuration, per target or for all. */
export function createStaticChapSecrets(config: ChapSecretsConfig): ChapSecretProvider {
  const pairFor = (targetName: string | undefined): ChapPair | undefined => {
    if (targetName === undefined) return config.discovery;
    return config.targets?.[targetName] ?? config.allTargets;
  };
  return {
    initiatorCredentials: (targetName) => pairFor(targetName)?.initiator,
    targetCredentials: (targetName) => pairFor(targetName)?.target,
  };
}

/** No CHAP anywhere: AuthMethod=None. */
export const NO_CHAP: ChapSecretProvider = {
  initiatorCredentials: () => undefined,
  targetCredentials: () => undefined,
};

const CHAP_MD5 = '5';
const CHALLENGE_BYTES = 16;

/** RFC 1994 §4.1: Response = MD5(Identifier || secret || Challenge). */
export function chapResponse(identifier: number, secret: string, challenge: Buffer): Buffer {
  return createHash('md5')
    .update(Buffer.from([identifier & 0xff]))
    .update(Buffer.from(secret, 'utf8'))
    .update(challenge)
    .digest();
}

/** §6.1 binary values: 0x hex or 0b base64. */
export function decodeBinaryValue(value: string): Buffer | undefined {
  if (/^0[xX]([0-9a-fA-F]{2})+$/.test(value)) return Buffer.from(value.slice(2), 'hex');
  if (/^0[xX][0-9a-fA-F]+$/.test(value)) return Buffer.from(`0${value.slice(2)}`, 'hex');
  if (/^0[bB][A-Za-z0-9+/=]+$/.test(value)) return Buffer.from(value.slice(2), 'base64');
  return undefined;
}

export type ChapStep =
  | { readonly kind: 'continue'; readonly answer: TextPair[] }
  | { readonly kind: 'authenticated'; readonly answer: TextPair[] }
  | { readonly kind: 'failed'; readonly reason: string; readonly answer: TextPair[] };

export interface ChapAuthenticatorModules {
  readonly randomBytes: (count: number) => Buffer;
}

/** One CHAP exchange: CHAP_A in, challenge out; CHAP_N/CHAP_R in, verdict (and mutual answer) out. */
export class ChapAuthenticator {
  private readonly initiator: ChapCredentials;
  private readonly target: ChapCredentials | undefined;
  private readonly modules: ChapAuthenticatorModules;
  private challenge: { identifier: number; bytes: Buffer } | undefined;

  constructor(options: { initiator: ChapCredentials; target: ChapCredentials | undefined }, modules: ChapAuthenticatorModules) {
    this.initiator = options.initiator;
    this.target = options.target;
    this.modules = modules;
  }

  /** Feed the keys of one Login Request in the security stage. */
  step(keys: ReadonlyMap<string, string>): ChapStep {
    if (this.challenge === undefined) {
      return this.offerChallenge(keys.get('CHAP_A'));
    }
    return this.verify(keys);
  }

  private offerChallenge(algorithms: string | undefined): ChapStep {
    if (algorithms === undefined) {
      return { kind: 'continue', answer: [] };
    }
    if (!algorithms.split(',').includes(CHAP_MD5)) {
      return { kind: 'failed', reason: `no supported CHAP algorithm in "${algorithms}"`, answer: [{ key: 'CHAP_A', value: 'Reject' }] };
    }
    const random = this.modules.randomBytes(CHALLENGE_BYTES + 1);
    const identifier = random[CHALLENGE_BYTES] ?? 0;
    const bytes = Buffer.from(random.subarray(0, CHALLENGE_BYTES));
    this.challenge = { identifier, bytes };
    return {
      kind: 'continue',
      answer: [
        { key: 'CHAP_A', value: CHAP_MD5 },
        { key: 'CHAP_I', value: String(identifier) },
        { key: 'CHAP_C', value: `0x${bytes.toString('hex')}` },
      ],
    };
  }

  private verify(keys: ReadonlyMap<string, string>): ChapStep {
    const challenge = this.challenge;
    const name = keys.get('CHAP_N');
    const responseText = keys.get('CHAP_R');
    if (challenge === undefined || name === undefined || responseText === undefined) {
      return { kind: 'failed', reason: 'CHAP_N and CHAP_R expected', answer: [] };
    }
    const response = decodeBinaryValue(responseText);
    const expected = chapResponse(challenge.identifier, this.initiator.secret, challenge.bytes);
    const matches = response !== undefined && response.length === expected.length && timingSafeEqual(response, expected);
    if (name !== this.initiator.user || !matches) {
      return { kind: 'failed', reason: `CHAP credentials of "${name}" do not match`, answer: [] };
    }
    const mutualIdentifier = keys.get('CHAP_I');
    const mutualChallengeText = keys.get('CHAP_C');
    if (mutualIdentifier === undefined && mutualChallengeText === undefined) {
      return { kind: 'authenticated', answer: [] };
    }
    return this.answerMutual(mutualIdentifier, mutualChallengeText, challenge.bytes);
  }

  private answerMutual(identifierText: string | undefined, challengeText: string | undefined, ours: Buffer): ChapStep {
    const identifier = identifierText === undefined ? undefined : Number.parseInt(identifierText, 10);
    const challenge = challengeText === undefined ? undefined : decodeBinaryValue(challengeText);
    if (identifier === undefined || !Number.isInteger(identifier) || identifier < 0 || identifier > 255 || challenge === undefined) {
      return { kind: 'failed', reason: 'mutual CHAP needs both CHAP_I and CHAP_C', answer: [] };
    }
    if (this.target === undefined) {
      return { kind: 'failed', reason: 'mutual CHAP asked but no target secret is configured', answer: [] };
    }
    // §12.1.3: a target must refuse its own challenge reflected back (a replay attack).
    if (challenge.equals(ours)) {
      return { kind: 'failed', reason: 'initiator reflected our CHAP challenge', answer: [] };
    }
    const response = chapResponse(identifier, this.target.secret, challenge);
    return {
      kind: 'authenticated',
      answer: [
        { key: 'CHAP_N', value: this.target.user },
        { key: 'CHAP_R', value: `0x${response.toString('hex')}` },
      ],
    };
  }
}
