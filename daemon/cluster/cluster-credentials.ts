import { randomBytes } from 'node:crypto';
import { chmod, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PlinthError } from '../../common/plinth-error.js';
import { API_TOKEN_FILE } from '../lifecycle/api-token.js';
import { readOptionalFile } from '../lifecycle/node-identity.js';

/**
 * The cluster's shared secrets on disk (ARCHITECTURE "auth"): the cluster
 * secret `<data-dir>/cluster-secret` authenticates peers (Raft handshake,
 * replica HELLO, forwarded proposals); the API token is shared by every
 * member. Both 0600, created at bootstrap or received when joining.
 * `<data-dir>/cluster-join` marks a node that joined rather than bootstrapped,
 * so a restart never bootstraps a second cluster by accident.
 */
export const CLUSTER_SECRET_FILE = 'cluster-secret';
export const JOIN_MARKER_FILE = 'cluster-join';
const SECRET_BYTES = 32;

export async function readClusterSecret(dataDir: string): Promise<Buffer | null> {
  const path = join(dataDir, CLUSTER_SECRET_FILE);
  const text = await readOptionalFile(path);
  if (text === null) return null;
  const hex = text.trim();
  if (!/^[0-9a-f]{64}$/.test(hex)) {
    throw new PlinthError('CONFIG_INVALID', `config: ${path} does not hold a cluster secret (expected 64 hex digits)`, { path });
  }
  return Buffer.from(hex, 'hex');
}

export async function createClusterSecret(dataDir: string, random: (size: number) => Buffer = randomBytes): Promise<Buffer> {
  const secret = random(SECRET_BYTES);
  await writePrivate(join(dataDir, CLUSTER_SECRET_FILE), secret.toString('hex'));
  return secret;
}

export async function wasJoined(dataDir: string): Promise<boolean> {
  return (await readOptionalFile(join(dataDir, JOIN_MARKER_FILE))) !== null;
}

/** Persist what a join answered, before the node serves anything (0600, synced, atomic renames). */
export async function saveJoinCredentials(dataDir: string, credentials: { clusterId: string; secret: Buffer; apiToken: string }): Promise<void> {
  await writePrivate(join(dataDir, API_TOKEN_FILE), credentials.apiToken);
  await writePrivate(join(dataDir, CLUSTER_SECRET_FILE), credentials.secret.toString('hex'));
  await writePrivate(join(dataDir, JOIN_MARKER_FILE), credentials.clusterId);
}

/** Write a secret file: 0600, synced, atomically renamed into place. */
export async function writePrivate(path: string, text: string): Promise<void> {
  const temporary = `${path}.tmp`;
  await writeFile(temporary, text.endsWith('\n') ? text : `${text}\n`, { mode: 0o600, flush: true });
  await chmod(temporary, 0o600);
  await rename(temporary, path);
}
