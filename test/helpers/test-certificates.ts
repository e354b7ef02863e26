import { execFile } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

/**
 * Throwaway X.509 material for tests, made with the openssl CLI: a CA, a
 * server certificate and a client certificate signed by it (ECDSA P-256,
 * valid for two days). Files use the names GnuTLS-based clients expect in
 * a certificate directory (libnbd `tls-certificates=DIR`, qemu
 * `tls-creds-x509,dir=DIR`): ca-cert.pem, server-cert.pem, server-key.pem,
 * client-cert.pem, client-key.pem, plus ca-key.pem. The caller owns `dir`
 * (create it and remove it in t.teardown).
 */

const run = promisify(execFile);
const OPENSSL = '/usr/bin/openssl';
const VALID_DAYS = '2';
const CURVE = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

export interface TestCertificateOptions {
  /** Subject alternative names of the server certificate; default IP 127.0.0.1 and DNS localhost. */
  readonly serverAltNames?: readonly string[];
  /** Common name of the CA, to tell two test CAs apart in errors. */
  readonly caCommonName?: string;
  /** Common name of the client certificate (a node id, a user name). */
  readonly clientCommonName?: string;
}

export interface TestCertificates {
  readonly dir: string;
  readonly caCertPath: string;
  readonly caKeyPath: string;
  readonly serverCertPath: string;
  readonly serverKeyPath: string;
  readonly clientCertPath: string;
  readonly clientKeyPath: string;
  /** PEM text, ready for tls.createSecureContext({ ca, cert, key }). */
  readonly caCertPem: string;
  readonly serverCertPem: string;
  readonly serverKeyPem: string;
  readonly clientCertPem: string;
  readonly clientKeyPem: string;
}

export async function createTestCertificates(
  dir: string,
  options: TestCertificateOptions = {},
): Promise<TestCertificates> {
  const path = (name: string): string => join(dir, name);
  const caCommonName = options.caCommonName ?? 'Plinth Test CA';
  await openssl([
    'req', '-x509', ...CURVE, '-keyout', path('ca-key.pem'), '-out', path('ca-cert.pem'),
    '-days', VALID_DAYS, '-subj', `/CN=${caCommonName}`,
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  const altNames = options.serverAltNames ?? ['IP:127.0.0.1', 'DNS:localhost'];
  await signLeaf(dir, 'server', 'plinth-test-server', [
    `subjectAltName=${altNames.join(',')}`,
    'extendedKeyUsage=serverAuth',
  ]);
  await signLeaf(dir, 'client', options.clientCommonName ?? 'plinth-test-client', ['extendedKeyUsage=clientAuth']);
  const text = (name: string): Promise<string> => readFile(path(name), 'utf8');
  return {
    dir,
    caCertPath: path('ca-cert.pem'),
    caKeyPath: path('ca-key.pem'),
    serverCertPath: path('server-cert.pem'),
    serverKeyPath: path('server-key.pem'),
    clientCertPath: path('client-cert.pem'),
    clientKeyPath: path('client-key.pem'),
    caCertPem: await text('ca-cert.pem'),
    serverCertPem: await text('server-cert.pem'),
    serverKeyPem: await text('server-key.pem'),
    clientCertPem: await text('client-cert.pem'),
    clientKeyPem: await text('client-key.pem'),
  };
}

/** A key and CSR for `role`, signed by the CA in `dir` with the given v3 extensions. */
async function signLeaf(dir: string, role: string, commonName: string, extensions: readonly string[]): Promise<void> {
  const path = (name: string): string => join(dir, name);
  const csr = path(`${role}.csr`);
  const extFile = path(`${role}.ext`);
  await openssl(['req', ...CURVE, '-keyout', path(`${role}-key.pem`), '-out', csr, '-subj', `/CN=${commonName}`]);
  const lines = ['basicConstraints=critical,CA:FALSE', 'keyUsage=critical,digitalSignature,keyEncipherment', ...extensions];
  await writeFile(extFile, `${lines.join('\n')}\n`);
  await openssl([
    'x509', '-req', '-in', csr, '-CA', path('ca-cert.pem'), '-CAkey', path('ca-key.pem'),
    '-CAcreateserial', '-out', path(`${role}-cert.pem`), '-days', VALID_DAYS, '-extfile', extFile,
  ]);
  await rm(csr);
  await rm(extFile);
}

async function openssl(args: readonly string[]): Promise<void> {
  try {
    await run(OPENSSL, args, { timeout: 20_000 });
  } catch (error) {
    const stderr = (error as { stderr?: unknown }).stderr;
    throw new Error(`openssl ${args[0] ?? ''} failed: ${typeof stderr === 'string' ? stderr : String(error)}`, {
      cause: error,
    });
  }
}
