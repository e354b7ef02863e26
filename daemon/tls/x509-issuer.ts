// tsyringe (inside @peculiar/x509) needs the Reflect metadata polyfill loaded first; ESM evaluates imports in order.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { randomBytes, webcrypto, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';

/**
 * The one module that knows the X.509 library (@peculiar/x509, pinned in
 * package.json): make EC P-256 key pairs, a self-signed cluster CA, and node
 * and client certificates signed by it. Everything leaves here as PEM text,
 * so the rest of the daemon uses only node:tls / node:crypto.
 */
x509.cryptoProvider.set(webcrypto);

const EC_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 24 * 60 * 60 * 1000;
export const CA_VALIDITY_DAYS = 3650;
export const NODE_CERT_VALIDITY_DAYS = 3650;
/** Clock skew between nodes: certificates are valid from a little before "now". */
const BACKDATE_MS = 60 * 60 * 1000;

export interface PemKeyPair {
  /** PKCS#8 private key. */
  readonly privateKeyPem: string;
  /** SubjectPublicKeyInfo. */
  readonly publicKeyPem: string;
}

export interface IssuedCa {
  readonly certPem: string;
  readonly keyPem: string;
}

export interface NodeCertRequest {
  readonly nodeId: string;
  /** The node's SubjectPublicKeyInfo (PEM): the key never leaves the node that made it. */
  readonly publicKeyPem: string;
  /** Host names and IP addresses the certificate must be valid for. */
  readonly hosts: readonly string[];
}

export async function generateKeyPair(): Promise<PemKeyPair> {
  const keys = await webcrypto.subtle.generateKey(EC_ALGORITHM, true, ['sign', 'verify']);
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  const spki = await webcrypto.subtle.exportKey('spki', keys.publicKey);
  return { privateKeyPem: toPem(pkcs8, 'PRIVATE KEY'), publicKeyPem: toPem(spki, 'PUBLIC KEY') };
}

export async function createCa(clusterName: string, now: Date = new Date()): Promise<IssuedCa> {
  const keys = await webcrypto.subtle.generateKey(EC_ALGORITHM, true, ['sign', 'verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: `CN=${clusterName}, O=Plinth`,
    notBefore: new Date(now.getTime() - BACKDATE_MS),
    notAfter: new Date(now.getTime() + CA_VALIDITY_DAYS * DAY_MS),
    keys,
    signingAlgorithm: EC_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { certPem: pemLine(cert.toString('pem')), keyPem: toPem(pkcs8, 'PRIVATE KEY') };
}

/** A node certificate for both ends of mutual TLS (serverAuth + clientAuth), signed by the CA. */
export async function issueNodeCert(ca: IssuedCa, request: NodeCertRequest, now: Date = new Date()): Promise<string> {
  return issueLeafCert(ca, {
    commonName: request.nodeId,
    publicKeyPem: request.publicKeyPem,
    validityDays: NODE_CERT_VALIDITY_DAYS,
    usages: [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
    altNames: subjectAltNames(request),
  }, now);
}

/**
 * A client certificate (clientAuth only, docs/security.md "NBD"): CN =
 * `name`, no subject alternative names, since it names a user or a host of
 * an NBD client, not an address anyone dials.
 */
export async function issueClientCert(ca: IssuedCa, request: ClientCertRequest, now: Date = new Date()): Promise<string> {
  return issueLeafCert(ca, {
    commonName: request.name,
    publicKeyPem: request.publicKeyPem,
    validityDays: request.validityDays,
    usages: [x509.ExtendedKeyUsage.clientAuth],
    altNames: null,
  }, now);
}

export interface ClientCertRequest {
  readonly name: string;
  /** The client's SubjectPublicKeyInfo (PEM). */
  readonly publicKeyPem: string;
  readonly validityDays: number;
}

interface LeafCertSpec {
  readonly commonName: string;
  readonly publicKeyPem: string;
  readonly validityDays: number;
  readonly usages: readonly x509.ExtendedKeyUsageType[];
  readonly altNames: x509.JsonGeneralNames | null;
}

/** One signing path for every leaf the cluster CA issues (node and client certificates). */
async function issueLeafCert(ca: IssuedCa, spec: LeafCertSpec, now: Date): Promise<string> {
  const caCert = new x509.X509Certificate(ca.certPem);
  const caKey = await importPrivateKey(ca.keyPem);
  const publicKey = await webcrypto.subtle.importKey('spki', fromPem(spec.publicKeyPem), EC_ALGORITHM, true, ['verify']);
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
    new x509.ExtendedKeyUsageExtension([...spec.usages], false),
  ];
  if (spec.altNames !== null) extensions.push(new x509.SubjectAlternativeNameExtension(spec.altNames, false));
  extensions.push(await x509.AuthorityKeyIdentifierExtension.create(caCert, false));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: `CN=${spec.commonName}, O=Plinth`,
    issuer: caCert.subject,
    notBefore: new Date(now.getTime() - BACKDATE_MS),
    // Never past the CA's own end: a chain is only as valid as its issuer.
    notAfter: new Date(Math.min(now.getTime() + spec.validityDays * DAY_MS, caCert.notAfter.getTime())),
    publicKey,
    signingKey: caKey,
    signingAlgorithm: EC_ALGORITHM,
    extensions,
  });
  return pemLine(cert.toString('pem'));
}

/** The names a node certificate carries: every listen host, loopback, and the node id as a DNS name. */
export function nodeCertNames(nodeId: string, listenHosts: readonly string[]): string[] {
  const names = new Set<string>();
  for (const host of [...listenHosts, '127.0.0.1', 'localhost', nodeId]) {
    // 0.0.0.0 / :: are "every address", not a name a client dials.
    if (host === '0.0.0.0' || host === '::' || host === '') continue;
    names.add(host.toLowerCase());
  }
  return [...names];
}

function subjectAltNames(request: NodeCertRequest): x509.JsonGeneralNames {
  return nodeCertNames(request.nodeId, request.hosts).map((name) => (isIP(name) === 0 ? { type: 'dns', value: name } : { type: 'ip', value: name }));
}

/** True when `certPem` was signed by `caPem` (signature and issuer name). */
export function isIssuedBy(certPem: string, caPem: string): boolean {
  const cert = new X509Certificate(certPem);
  const ca = new X509Certificate(caPem);
  return cert.checkIssued(ca) && cert.verify(ca.publicKey);
}

async function importPrivateKey(pem: string): Promise<webcrypto.CryptoKey> {
  return webcrypto.subtle.importKey('pkcs8', fromPem(pem), EC_ALGORITHM, false, ['sign']);
}

function serialNumber(): string {
  // Positive 16-byte serial (RFC 5280 §4.1.2.2: at most 20 octets, positive).
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return bytes.toString('hex');
}

/** PEM text ends in exactly one newline, as written to and read from disk. */
function pemLine(pem: string): string {
  return `${pem.trim()}\n`;
}

function toPem(der: ArrayBuffer, label: string): string {
  const base64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${base64}\n-----END ${label}-----\n`;
}

function fromPem(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----(BEGIN|END) [A-Z ]+-----/g, '').replace(/\s+/g, ''), 'base64');
}
