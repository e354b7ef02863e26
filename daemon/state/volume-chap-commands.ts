import { PlinthError } from '../../common/plinth-error.js';
import type { ClusterState, VolumeRecord } from './cluster-state.js';
import type { VolumeApplied } from './replica-commands.js';
import { requireVolume, withVolume } from './state-assertions.js';

/**
 * Per-volume iSCSI CHAP secrets in the cluster state (docs/iscsi.md "CHAP").
 * Committed through Raft, so every node serving the volume's target
 * enforces the same secret and it follows the volume on failover. They
 * override the node's cluster-wide `--iscsi-chap-*` settings for that one
 * target; discovery sessions keep the cluster-wide ones.
 *
 * Secrets never leave the state machine through the API: views show the
 * user name and whether CHAP is mutual only (daemon/control/views.ts), and
 * no message or error detail here ever quotes a secret.
 */
export interface VolumeChapSecrets {
  /** What the initiator answers CHAP_N with (one-way CHAP). */
  readonly user: string;
  readonly secret: string;
  /** Mutual CHAP (RFC 7143 §12.1.3): the name and secret this target answers the initiator's challenge with. */
  readonly targetUser?: string;
  readonly targetSecret?: string;
}

/**
 * `volume.chap`: with user and secret, sets (replaces) the volume's CHAP
 * secrets; with no field but the name, clears them (the cluster-wide
 * settings apply again). targetUser and targetSecret come together, and
 * only with user and secret.
 */
export interface VolumeChapCommand {
  readonly type: 'volume.chap';
  readonly name: string;
  readonly user?: string;
  readonly secret?: string;
  readonly targetUser?: string;
  readonly targetSecret?: string;
}

/**
 * RFC 7143 §12.1.3 asks for secrets hard to guess; Windows' initiator
 * demands 12 to 16 bytes, libiscsi and Linux accept longer. 255 bounds what
 * a Raft entry carries.
 */
export const MIN_CHAP_SECRET_BYTES = 12;
export const MAX_CHAP_SECRET_BYTES = 255;
/** CHAP_N is a text value (RFC 7143 §6.1, §12.1.3); 255 bytes is plenty and bounded. */
export const MAX_CHAP_USER_BYTES = 255;

// Control characters: never typed on purpose, and a stray "\r" from a secret file would never match.
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/;

/** Why a CHAP user name is unusable, or undefined when it is fine. */
function chapUserProblem(user: string): string | undefined {
  const bytes = Buffer.byteLength(user, 'utf8');
  if (bytes === 0) return 'must not be empty';
  if (bytes > MAX_CHAP_USER_BYTES) return `must be at most ${MAX_CHAP_USER_BYTES} bytes, got ${bytes}`;
  if (CONTROL_CHARACTER.test(user)) return 'must not contain control characters';
  return undefined;
}

/** Why a CHAP secret is unusable, or undefined when it is fine. Never quotes the secret. */
function chapSecretProblem(secret: string): string | undefined {
  const bytes = Buffer.byteLength(secret, 'utf8');
  if (bytes < MIN_CHAP_SECRET_BYTES || bytes > MAX_CHAP_SECRET_BYTES) {
    return `must be ${MIN_CHAP_SECRET_BYTES} to ${MAX_CHAP_SECRET_BYTES} bytes long, got ${bytes} (Windows initiators need 12 to 16)`;
  }
  if (CONTROL_CHARACTER.test(secret)) return 'must not contain control characters (a trailing newline in a secret file is removed)';
  return undefined;
}

/**
 * Why a set of CHAP credentials is unusable as a whole, naming the field as
 * the operator wrote it (`fieldNames`), or undefined when it is fine.
 */
export function chapSecretsProblem(
  secrets: { user?: string; secret?: string; targetUser?: string; targetSecret?: string },
  fieldNames: { user: string; secret: string; targetUser: string; targetSecret: string },
): string | undefined {
  const pairProblem = (user: string | undefined, secret: string | undefined, userField: string, secretField: string): string | undefined => {
    if (user === undefined && secret === undefined) return undefined;
    if (user === undefined) return `${secretField} is set but ${userField} is not`;
    if (secret === undefined) return `${userField} is set but ${secretField} is not`;
    const userProblem = chapUserProblem(user);
    if (userProblem !== undefined) return `${userField} ${userProblem}`;
    const secretProblem = chapSecretProblem(secret);
    return secretProblem === undefined ? undefined : `${secretField} ${secretProblem}`;
  };
  const initiator = pairProblem(secrets.user, secrets.secret, fieldNames.user, fieldNames.secret);
  if (initiator !== undefined) return initiator;
  const target = pairProblem(secrets.targetUser, secrets.targetSecret, fieldNames.targetUser, fieldNames.targetSecret);
  if (target !== undefined) return target;
  if (secrets.targetUser !== undefined && secrets.user === undefined) {
    return `mutual CHAP (${fieldNames.targetUser}) needs one-way CHAP too (${fieldNames.user} and ${fieldNames.secret})`;
  }
  // §12.1.3: a secret used to authenticate initiators MUST NOT also authenticate a target.
  if (secrets.targetSecret !== undefined && secrets.targetSecret === secrets.secret) {
    return `${fieldNames.targetSecret} must differ from ${fieldNames.secret} (RFC 7143 §12.1.3)`;
  }
  return undefined;
}

const COMMAND_FIELD_NAMES = { user: 'user', secret: 'secret', targetUser: 'targetUser', targetSecret: 'targetSecret' } as const;

export function setVolumeChap(state: ClusterState, command: VolumeChapCommand): VolumeApplied {
  const volume = requireVolume(state, command.name);
  const problem = chapSecretsProblem(command, COMMAND_FIELD_NAMES);
  if (problem !== undefined) {
    throw new PlinthError('INVALID_ARGUMENT', `volume ${volume.name}: CHAP ${problem}`, { name: volume.name, reason: problem });
  }
  const { chap: _previous, ...withoutChap } = volume;
  const chap = chapOf(command);
  const updated: VolumeRecord = chap === undefined ? withoutChap : { ...withoutChap, chap };
  return { state: withVolume(state, updated), volume: updated };
}

function chapOf(command: VolumeChapCommand): VolumeChapSecrets | undefined {
  if (command.user === undefined || command.secret === undefined) return undefined;
  const base = { user: command.user, secret: command.secret };
  if (command.targetUser === undefined || command.targetSecret === undefined) return base;
  return { ...base, targetUser: command.targetUser, targetSecret: command.targetSecret };
}
