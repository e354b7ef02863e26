import { readFile } from 'node:fs/promises';
import type { VolumeChapRequest, VolumeView } from '../../../daemon/control-plane.js';
import { CliSetupError, CliUsageError } from '../cli-usage-error.js';
import type { CommandOptions } from '../parse-args.js';
import { renderJson } from '../table.js';
import { argAt, type CommandSpec } from './command-spec.js';

/**
 * `plinth volume chap NAME --user U --secret-file F [--target-user U
 * --target-secret-file F]` and `plinth volume chap NAME --clear`
 * (docs/iscsi.md "CHAP"). Secrets come from files only: on the command line
 * they would show in `ps` and the shell history. The daemon checks the
 * rules (12 to 255 bytes, target secret unlike the initiator's).
 */

/** A secret file holds one line; the same bound as the daemon's (daemon/config/iscsi-chap-settings.ts). */
const MAX_SECRET_FILE_BYTES = 4096;

export const volumeChapCommand: CommandSpec = {
  noun: 'volume', verbs: ['chap'], args: ['NAME'],
  options: ['user', 'secret-file', 'target-user', 'target-secret-file', 'clear'], requiredOptions: [],
  synopsis: 'volume chap NAME (--user U --secret-file F [--target-user U --target-secret-file F] | --clear)',
  summary: 'set the volume\'s iSCSI CHAP secrets (from files; --target-*: mutual), or --clear them',
  async run(context, args, options) {
    const name = argAt(args, 0);
    const secretOptions = [options.user, options.secretFile, options.targetUser, options.targetSecretFile];
    if (options.clear && secretOptions.some((value) => value !== undefined)) {
      throw new CliUsageError('"volume chap": --clear takes no other option');
    }
    const view = options.clear ? await context.client.clearVolumeChap(name) : await context.client.setVolumeChap(name, await chapRequestOf(options));
    context.print(context.json ? renderJson(view) : `${chapLine(view)}\n`);
  },
};

async function chapRequestOf(options: CommandOptions): Promise<VolumeChapRequest> {
  if (options.user === undefined || options.secretFile === undefined) {
    throw new CliUsageError('"volume chap" needs --user and --secret-file, or --clear');
  }
  if ((options.targetUser === undefined) !== (options.targetSecretFile === undefined)) {
    throw new CliUsageError('"volume chap": --target-user and --target-secret-file go together (mutual CHAP)');
  }
  const base = { user: options.user, secret: await readSecretFile(options.secretFile, 'secret-file') };
  if (options.targetUser === undefined || options.targetSecretFile === undefined) return base;
  return { ...base, targetUser: options.targetUser, targetSecret: await readSecretFile(options.targetSecretFile, 'target-secret-file') };
}

async function readSecretFile(path: string, option: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err: unknown) {
    throw new CliSetupError(`--${option} ${path}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  if (Buffer.byteLength(text, 'utf8') > MAX_SECRET_FILE_BYTES) {
    throw new CliSetupError(`--${option} ${path}: a secret file holds one line; this one is larger than ${MAX_SECRET_FILE_BYTES} bytes`);
  }
  // `echo secret > file` leaves one line ending: it is not part of the secret.
  return text.replace(/\r?\n$/, '');
}

/** What `volume inspect` and `volume chap` say about a volume's CHAP. */
export function chapDescription(view: VolumeView): string {
  if (view.chap === null) return 'cluster-wide settings';
  return `user ${view.chap.user}${view.chap.mutual ? ', mutual' : ''}`;
}

function chapLine(view: VolumeView): string {
  return view.chap === null ? `volume ${view.name}: iSCSI CHAP cleared (cluster-wide settings apply)` : `volume ${view.name}: iSCSI CHAP set (${chapDescription(view)})`;
}
