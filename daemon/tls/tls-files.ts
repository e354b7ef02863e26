import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PlinthError } from '../../common/plinth-error.js';
import { writePrivate } from '../cluster/cluster-credentials.js';
import { readOptionalFile } from '../lifecycle/node-identity.js';
import { isIssuedBy } from './x509-issuer.js';

/**
 * A node's TLS material on disk (docs/security.md "Files"):
 *
 *   <data-dir>/tls/ca.crt    the cluster CA certificate (every member and the CLI trust it)
 *   <data-dir>/tls/ca.key    the CA key, so any member can sign a later joiner (0600)
 *   <data-dir>/tls/node.crt  this node's certificate, signed by the CA
 *   <data-dir>/tls/node.key  this node's key (0600)
 *
 * With operator certificates (tls-cert-file/tls-key-file/tls-ca-file) the
 * files stay where the operator keeps them and there is no CA key.
 */
export const TLS_DIR = 'tls';
export const CA_CERT_FILE = 'ca.crt';
export const CA_KEY_FILE = 'ca.key';
export const NODE_CERT_FILE = 'node.crt';
export const NODE_KEY_FILE = 'node.key';

export interface TlsMaterial {
  readonly caCertPem: string;
  readonly certPem: string;
  readonly keyPem: string;
  /** Null with operator-provided certificates: this node cannot sign joiners. */
  readonly caKeyPem: string | null;
}

export interface OperatorTlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile: string;
}

export function tlsDirOf(dataDir: string): string {
  return join(dataDir, TLS_DIR);
}

/** The material of a TLS member, or null when this data dir holds none (a plain cluster, or not yet joined). */
export async function readTlsMaterial(dataDir: string): Promise<TlsMaterial | null> {
  const dir = tlsDirOf(dataDir);
  const caCertPem = await readOptionalFile(join(dir, CA_CERT_FILE));
  if (caCertPem === null) return null;
  const certPem = await readOptionalFile(join(dir, NODE_CERT_FILE));
  const keyPem = await readOptionalFile(join(dir, NODE_KEY_FILE));
  if (certPem === null || keyPem === null) {
    throw new PlinthError('CONFIG_INVALID', `config: ${dir} holds ${CA_CERT_FILE} but not ${NODE_CERT_FILE} and ${NODE_KEY_FILE}; restore them from a backup`, { path: dir });
  }
  const material = { caCertPem, certPem, keyPem, caKeyPem: await readOptionalFile(join(dir, CA_KEY_FILE)) };
  assertChain(material, dir);
  return material;
}

export async function readOperatorTls(files: OperatorTlsFiles): Promise<TlsMaterial> {
  const read = async (path: string, setting: string): Promise<string> => {
    try {
      return await readFile(path, 'utf8');
    } catch (err) {
      throw new PlinthError('CONFIG_INVALID', `config: ${setting}=${path}: cannot read it: ${err instanceof Error ? err.message : String(err)}`, { path }, { cause: err });
    }
  };
  const material = {
    certPem: await read(files.certFile, 'tls-cert-file'),
    keyPem: await read(files.keyFile, 'tls-key-file'),
    caCertPem: await read(files.caFile, 'tls-ca-file'),
    caKeyPem: null,
  };
  assertChain(material, files.certFile);
  return material;
}

/** Persist what bootstrap made or a join handed out; keys 0600, the folder 0700. */
export async function writeTlsMaterial(dataDir: string, material: TlsMaterial): Promise<void> {
  const dir = tlsDirOf(dataDir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writePrivate(join(dir, NODE_KEY_FILE), material.keyPem);
  if (material.caKeyPem !== null) await writePrivate(join(dir, CA_KEY_FILE), material.caKeyPem);
  await writePrivate(join(dir, NODE_CERT_FILE), material.certPem);
  // Written last: its presence is what marks this data dir as a TLS member (readTlsMaterial).
  await writePrivate(join(dir, CA_CERT_FILE), material.caCertPem);
}

function assertChain(material: TlsMaterial, where: string): void {
  let issued = false;
  try {
    issued = isIssuedBy(material.certPem, material.caCertPem);
  } catch (err) {
    throw new PlinthError('CONFIG_INVALID', `config: ${where}: not a PEM certificate: ${err instanceof Error ? err.message : String(err)}`, { path: where }, { cause: err });
  }
  if (!issued) throw new PlinthError('CONFIG_INVALID', `config: ${where}: the node certificate is not signed by the cluster CA`, { path: where });
}
