import type { ChapCredentials } from '../../blockdev/iscsi/chap.js';
import { chapSecretsProblem } from '../state/volume-chap-commands.js';
import type { IscsiChapConfig, SettingKey } from './config-types.js';
import { configError, firstValue, type RawSetting, type RawSettings } from './raw-settings.js';

/**
 * Cluster-wide iSCSI CHAP from the node's settings (docs/operations.md
 * "iSCSI CHAP"): `iscsi-chap-user` with the secret from
 * `iscsi-chap-secret-file` (flag, YAML or env) or `iscsi-chap-secret` (YAML
 * or env only: never a flag, it would show in `ps`); the same with
 * `iscsi-chap-target-…` for mutual CHAP. The rules are the cluster state's
 * (volume-chap-commands.ts), so a secret valid here is valid per volume.
 * No error message ever quotes a secret.
 */

/** A secret file holds one line; anything longer is the wrong file. */
export const MAX_SECRET_FILE_BYTES = 4096;

export type ReadSecretFile = (path: string) => string;

interface SecretSource {
  readonly value: string;
  /** How the operator wrote it: `--iscsi-chap-secret-file`, `PLINTH_ISCSI_CHAP_SECRET`… */
  readonly source: string;
}

export function iscsiChapOf(settings: RawSettings, readSecretFile: ReadSecretFile): IscsiChapConfig | null {
  const user = textOf(settings['iscsi-chap-user']);
  const secret = secretOf(settings, 'iscsi-chap-secret', 'iscsi-chap-secret-file', readSecretFile);
  const targetUser = textOf(settings['iscsi-chap-target-user']);
  const targetSecret = secretOf(settings, 'iscsi-chap-target-secret', 'iscsi-chap-target-secret-file', readSecretFile);
  const names = {
    user: user?.source ?? 'iscsi-chap-user',
    secret: secret?.source ?? 'iscsi-chap-secret(-file)',
    targetUser: targetUser?.source ?? 'iscsi-chap-target-user',
    targetSecret: targetSecret?.source ?? 'iscsi-chap-target-secret(-file)',
  };
  const problem = chapSecretsProblem(
    {
      ...(user === undefined ? {} : { user: user.value }),
      ...(secret === undefined ? {} : { secret: secret.value }),
      ...(targetUser === undefined ? {} : { targetUser: targetUser.value }),
      ...(targetSecret === undefined ? {} : { targetSecret: targetSecret.value }),
    },
    names,
  );
  if (problem !== undefined) throw configError('iSCSI CHAP', null, problem);
  if (user === undefined || secret === undefined) return null;
  const initiator: ChapCredentials = { user: user.value, secret: secret.value };
  const target = targetUser === undefined || targetSecret === undefined ? null : { user: targetUser.value, secret: targetSecret.value };
  return { initiator, target };
}

function textOf(setting: RawSetting | undefined): SecretSource | undefined {
  return setting === undefined ? undefined : { value: firstValue(setting), source: setting.source };
}

/** The secret itself (YAML/env) or the file holding it; both at once is ambiguous and refused. */
function secretOf(settings: RawSettings, secretKey: SettingKey, fileKey: SettingKey, readSecretFile: ReadSecretFile): SecretSource | undefined {
  const inline = settings[secretKey];
  const file = settings[fileKey];
  if (inline !== undefined && file !== undefined) {
    throw configError(inline.source, null, `give either ${inline.source} or ${file.source}, not both`);
  }
  if (inline !== undefined) return { value: firstValue(inline), source: inline.source };
  if (file === undefined) return undefined;
  const path = firstValue(file);
  return { value: readSecret(path, file.source, readSecretFile), source: `${file.source} (${path})` };
}

function readSecret(path: string, source: string, readSecretFile: ReadSecretFile): string {
  let text: string;
  try {
    text = readSecretFile(path);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw configError(source, path, `cannot read the secret file: ${reason}`);
  }
  if (Buffer.byteLength(text, 'utf8') > MAX_SECRET_FILE_BYTES) {
    throw configError(source, path, `a secret file holds one line; this one is larger than ${MAX_SECRET_FILE_BYTES} bytes`);
  }
  // `echo secret > file` leaves one line ending: it is not part of the secret.
  return text.replace(/\r?\n$/, '');
}
