import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { readTlsMaterial, tlsDirOf, writeTlsMaterial, type TlsMaterial } from '../../../../daemon/tls/tls-files.js';
import { createCa, generateKeyPair, isIssuedBy, issueNodeCert, nodeCertNames } from '../../../../daemon/tls/x509-issuer.js';

/** Cluster CA and node certificates (docs/security.md "Files"), checked with node:crypto, not the library that made them. */

async function tempDir(test: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'plinth-pki-'));
  test.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function newMaterial(nodeId: string, hosts: readonly string[]): Promise<TlsMaterial> {
  const ca = await createCa('test cluster');
  const keys = await generateKeyPair();
  const certPem = await issueNodeCert(ca, { nodeId, publicKeyPem: keys.publicKeyPem, hosts });
  return { caCertPem: ca.certPem, caKeyPem: ca.keyPem, certPem, keyPem: keys.privateKeyPem };
}

t.test('the CA is a self-signed EC P-256 CA valid for ten years', async (t) => {
  const ca = await createCa('test cluster');
  const cert = new X509Certificate(ca.certPem);
  t.ok(cert.ca, 'basicConstraints CA:TRUE');
  t.ok(cert.verify(cert.publicKey), 'self-signed');
  t.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
  const years = (Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / (365 * 24 * 3600 * 1000);
  t.ok(years > 9.9 && years < 10.1, `validity ${years.toFixed(2)} years`);
  t.match(ca.keyPem, /^-----BEGIN PRIVATE KEY-----/);
});

t.test('a node certificate chains to its CA, names every listen host, loopback and the node id, and serves both TLS ends', async (t) => {
  const material = await newMaterial('n1', ['10.0.0.7', 'storage-1.example', '0.0.0.0']);
  const ca = new X509Certificate(material.caCertPem);
  const cert = new X509Certificate(material.certPem);
  t.ok(cert.checkIssued(ca), 'issuer is the CA');
  t.ok(cert.verify(ca.publicKey), 'signed by the CA key');
  t.notOk(cert.ca, 'not a CA');
  t.ok(isIssuedBy(material.certPem, material.caCertPem));
  const names = cert.subjectAltName ?? '';
  for (const expected of ['IP Address:10.0.0.7', 'DNS:storage-1.example', 'IP Address:127.0.0.1', 'DNS:localhost', 'DNS:n1']) {
    t.ok(names.includes(expected), `SAN has ${expected} (${names})`);
  }
  t.notOk(names.includes('0.0.0.0'), 'the wildcard bind address is no name');
  t.same(cert.keyUsage?.sort(), ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2'], 'serverAuth + clientAuth');
  t.ok(cert.checkIP('10.0.0.7') !== undefined && cert.checkHost('n1') !== undefined);
});

t.test('a certificate of another CA does not chain', async (t) => {
  const one = await newMaterial('n1', []);
  const other = await newMaterial('n1', []);
  t.notOk(isIssuedBy(one.certPem, other.caCertPem));
});

t.test('nodeCertNames drops duplicates and bind-all addresses', async (t) => {
  t.same(nodeCertNames('Node-A', ['127.0.0.1', '::', 'LOCALHOST']), ['127.0.0.1', 'localhost', 'node-a']);
});

t.test('files: keys 0600 in a 0700 folder, read back identical; a mismatched pair is refused', async (t) => {
  const dataDir = await tempDir(t);
  const material = await newMaterial('n1', ['127.0.0.1']);
  await writeTlsMaterial(dataDir, material);
  const dir = tlsDirOf(dataDir);
  t.equal((await stat(dir)).mode & 0o777, 0o700);
  for (const name of ['ca.key', 'node.key', 'ca.crt', 'node.crt']) t.equal((await stat(join(dir, name))).mode & 0o777, 0o600, name);
  t.same(await readTlsMaterial(dataDir), material);

  const other = await newMaterial('n1', []);
  await writeFile(join(dir, 'ca.crt'), other.caCertPem);
  await t.rejects(readTlsMaterial(dataDir), { code: 'CONFIG_INVALID', message: /not signed by the cluster CA/ });
});

t.test('no tls folder: not a TLS member; a CA without the node files is refused', async (t) => {
  const dataDir = await tempDir(t);
  t.equal(await readTlsMaterial(dataDir), null);
  const material = await newMaterial('n1', []);
  await writeTlsMaterial(dataDir, material);
  await rm(join(tlsDirOf(dataDir), 'node.key'));
  await t.rejects(readTlsMaterial(dataDir), { code: 'CONFIG_INVALID', message: /node\.key/ });
  t.match(await readFile(join(tlsDirOf(dataDir), 'ca.crt'), 'utf8'), /BEGIN CERTIFICATE/);
});
