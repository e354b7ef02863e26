import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { ClientCertificateFiles } from '../../client/plinth-client.js';
import { CliSetupError, CliUsageError } from '../cli-usage-error.js';
import { renderJson } from '../table.js';
import { argAt, type CommandSpec } from './command-spec.js';

/**
 * `plinth tls client-cert NAME [--out DIR] [--days N] [--force]`
 * (docs/security.md "NBD"): asks the daemon for an NBD client certificate
 * signed by the cluster CA and writes the folder GnuTLS clients read —
 * libnbd's `tls-certificates=DIR` and qemu's `tls-creds-x509,dir=DIR`:
 *
 *   DIR/ca-cert.pem      the cluster CA (to verify the server)
 *   DIR/client-cert.pem  this client's certificate
 *   DIR/client-key.pem   its private key (0600)
 */
export const CLIENT_CERT_FILES = { caCert: 'ca-cert.pem', clientCert: 'client-cert.pem', clientKey: 'client-key.pem' } as const;

/** The daemon bounds it too (daemon/tls/client-certificates.ts); this only catches a typo before the call. */
const DAYS_PATTERN = /^[1-9]\d{0,4}$/;

export const tlsCommands: readonly CommandSpec[] = [
  {
    noun: 'tls', verbs: ['client-cert'], args: ['NAME'], options: ['out', 'days', 'force'], requiredOptions: [],
    synopsis: 'tls client-cert NAME [--out DIR] [--days N] [--force]',
    summary: 'an NBD client certificate of the cluster CA, written as DIR/{ca-cert,client-cert,client-key}.pem',
    async run(context, args, options) {
      const name = argAt(args, 0);
      if (options.days !== undefined && !DAYS_PATTERN.test(options.days)) throw new CliUsageError(`--days must be a whole number of days, got "${options.days}"`);
      const dir = resolve(options.out ?? `plinth-client-${name}`);
      const files = await context.client.issueClientCertificate(options.days === undefined ? { name } : { name, days: Number(options.days) });
      await writeCertificateFolder(dir, files, options.force);
      if (context.json) {
        context.print(renderJson({ dir, files: Object.values(CLIENT_CERT_FILES).map((file) => join(dir, file)) }));
        return;
      }
      context.print(usageLines(name, dir).join('\n'));
    },
  },
];

/** Refuses to overwrite an existing key unless --force: it may be the one a client uses today. */
async function writeCertificateFolder(dir: string, files: ClientCertificateFiles, force: boolean): Promise<void> {
  const flag = force ? 'w' : 'wx';
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFile(join(dir, CLIENT_CERT_FILES.clientKey), files.clientKey, { mode: 0o600, flag });
    // An overwritten file keeps its old mode: make sure the key is 0600 whatever it was.
    await chmod(join(dir, CLIENT_CERT_FILES.clientKey), 0o600);
    await writeFile(join(dir, CLIENT_CERT_FILES.clientCert), files.clientCert, { mode: 0o644, flag });
    await writeFile(join(dir, CLIENT_CERT_FILES.caCert), files.caCert, { mode: 0o644, flag });
  } catch (err: unknown) {
    const exists = err instanceof Error && 'code' in err && err.code === 'EEXIST';
    const reason = exists ? 'it already holds a client certificate (pass --force to replace it, or choose another --out)' : err instanceof Error ? err.message : String(err);
    throw new CliSetupError(`cannot write the certificate folder ${dir}: ${reason}`, { cause: err });
  }
}

function usageLines(name: string, dir: string): string[] {
  return [
    `wrote ${join(dir, CLIENT_CERT_FILES.caCert)}, ${CLIENT_CERT_FILES.clientCert} and ${CLIENT_CERT_FILES.clientKey} (0600) for "${name}"`,
    'use it with libnbd (nbdinfo, nbdcopy, nbdfuse, nbdsh):',
    `  nbdinfo 'nbds://NODE:10809/VOLUME?tls-certificates=${dir}'`,
    'or qemu:',
    `  qemu-img info --object tls-creds-x509,id=tls0,endpoint=client,dir=${dir} \\`,
    "    --image-opts 'driver=nbd,host=NODE,port=10809,export=VOLUME,tls-creds=tls0'",
    '',
  ];
}
