import { X509Certificate } from 'node:crypto';
import { createSecureContext, type SecureContext } from 'node:tls';
import type { Logger } from 'pino';
import { PlinthError } from '../../common/plinth-error.js';
import { readClusterSecret } from '../cluster/cluster-credentials.js';
import { newJoinToken, parseJoinToken, readJoinToken, writeJoinToken } from './join-token.js';
import { plainPeerSockets, tlsPeerSockets, type PeerSockets } from './peer-sockets.js';
import { issueClientCertificate, validateClientCertificateRequest, type ClientCertificateBundle, type ClientCertificateRequest } from './client-certificates.js';
import type { ClusterTlsService } from './cluster-tls-service.js';
import { readOperatorTls, readTlsMaterial, writeTlsMaterial, type TlsMaterial } from './tls-files.js';
import { tlsForNewCluster, type TlsSettings } from './tls-mode.js';
import { createCa, generateKeyPair, isIssuedBy, issueNodeCert, type PemKeyPair } from './x509-issuer.js';

/** What a member hands a joiner that proved the join token (join-protocol.ts). */
export interface JoinTlsGrant {
  readonly caCertPem: string;
  readonly caKeyPem: string;
  readonly certPem: string;
  readonly joinToken: string;
}

export interface NodeTlsOptions {
  readonly dataDir: string;
  readonly nodeId: string;
  readonly settings: TlsSettings;
  /** Hosts of the api, peer and nbd listen addresses: the TLS decision and the certificate's names. */
  readonly listenHosts: readonly string[];
  readonly joining: boolean;
  /** `join-token` setting: needed to join a TLS cluster without operator certificates. */
  readonly joinToken: string | null;
}

/**
 * This node's TLS state, decided before any listener starts (docs/security.md):
 *
 * - plain: a cluster without TLS (loopback default, tls=off);
 * - member: holds a node certificate of the cluster CA;
 * - joining: joins a TLS cluster with a join token; its key is made here,
 *   its certificate arrives with the join (`adopt`). Until then the peer
 *   listener serves a throwaway self-signed certificate nobody trusts.
 */
export class NodeTls implements ClusterTlsService {
  readonly sockets: PeerSockets;
  #material: TlsMaterial | null;
  #joinToken: string | null;
  readonly #joinKey: PemKeyPair | null;
  readonly #dataDir: string;

  private constructor(state: { sockets: PeerSockets; material: TlsMaterial | null; joinToken: string | null; joinKey: PemKeyPair | null; dataDir: string }) {
    this.sockets = state.sockets;
    this.#material = state.material;
    this.#joinToken = state.joinToken;
    this.#joinKey = state.joinKey;
    this.#dataDir = state.dataDir;
  }

  /** A node of a plain cluster (also what tests that wire a cluster node by hand use). */
  static plain(): NodeTls {
    return new NodeTls({ sockets: plainPeerSockets(), material: null, joinToken: null, joinKey: null, dataDir: '' });
  }

  static async prepare(options: NodeTlsOptions, modules: { readonly logger: Logger }): Promise<NodeTls> {
    const { dataDir, settings, logger } = { ...options, logger: modules.logger };
    const operator = settings.certFile !== null && settings.keyFile !== null && settings.caFile !== null
      ? await readOperatorTls({ certFile: settings.certFile, keyFile: settings.keyFile, caFile: settings.caFile })
      : null;
    const member = (material: TlsMaterial, joinToken: string | null): NodeTls =>
      new NodeTls({ sockets: tlsPeerSockets(material, { logger }), material, joinToken, joinKey: null, dataDir });
    const plain = NodeTls.plain();

    if ((await readClusterSecret(dataDir)) !== null) {
      const material = operator ?? (await readTlsMaterial(dataDir));
      if (material === null) {
        if (settings.mode === 'on') {
          throw new PlinthError('CONFIG_INVALID', 'config: tls=on, but this data dir belongs to a cluster created without TLS; a cluster is TLS or not from its bootstrap (docs/security.md)', { dataDir });
        }
        return plain;
      }
      if (settings.mode === 'off') logger.warn('tls=off ignored: this node belongs to a TLS cluster, which stays TLS');
      return member(material, await readJoinToken(dataDir));
    }
    if (options.joining) return NodeTls.#forJoin(options, operator, member, plain, logger);
    const decision = tlsForNewCluster(settings, options.listenHosts);
    logger.info({ tls: decision.on }, `bootstrap: ${decision.on ? 'TLS on' : 'plain TCP'} (${decision.reason})`);
    if (!decision.on) return plain;
    const material = operator ?? (await NodeTls.#newClusterPki(options));
    if (operator === null) await writeTlsMaterial(dataDir, material);
    const joinToken = newJoinToken();
    await writeJoinToken(dataDir, joinToken);
    return member(material, joinToken);
  }

  static async #forJoin(
    options: NodeTlsOptions,
    operator: TlsMaterial | null,
    member: (material: TlsMaterial, joinToken: string | null) => NodeTls,
    plain: NodeTls,
    logger: Logger,
  ): Promise<NodeTls> {
    const { settings, joinToken } = options;
    if (settings.mode === 'off' && (joinToken !== null || operator !== null)) {
      throw new PlinthError('CONFIG_INVALID', 'config: join-token / tls-cert-file need TLS, but tls=off', {});
    }
    if (operator !== null) return member(operator, joinToken);
    if (joinToken === null) {
      const wanted = tlsForNewCluster(settings, options.listenHosts);
      if (wanted.on) {
        throw new PlinthError('CONFIG_INVALID', `config: joining a TLS cluster needs the cluster's join token (${wanted.reason}): pass --join-token (PLINTH_JOIN_TOKEN), found in <data-dir>/join-token on a member`, {});
      }
      return plain;
    }
    // A throwaway CA and certificate only so the peer listener can start; replaced by adopt().
    const joinKey = await generateKeyPair();
    const placeholderCa = await createCa(`plinth-joining-${options.nodeId}`);
    const certPem = await issueNodeCert(placeholderCa, { nodeId: options.nodeId, publicKeyPem: joinKey.publicKeyPem, hosts: options.listenHosts });
    const placeholder: TlsMaterial = { caCertPem: placeholderCa.certPem, certPem, keyPem: joinKey.privateKeyPem, caKeyPem: null };
    logger.info('joining with a join token: TLS on');
    return new NodeTls({ sockets: tlsPeerSockets(placeholder, { logger }), material: placeholder, joinToken: parseJoinToken(joinToken, 'join-token'), joinKey, dataDir: options.dataDir });
  }

  static async #newClusterPki(options: NodeTlsOptions): Promise<TlsMaterial> {
    const ca = await createCa(`Plinth cluster CA (${options.nodeId})`);
    const keys = await generateKeyPair();
    const certPem = await issueNodeCert(ca, { nodeId: options.nodeId, publicKeyPem: keys.publicKeyPem, hosts: options.listenHosts });
    return { caCertPem: ca.certPem, certPem, keyPem: keys.privateKeyPem, caKeyPem: ca.keyPem };
  }

  get enabled(): boolean {
    return this.sockets.tls;
  }

  get joinToken(): string | null {
    return this.#joinToken;
  }

  /** The joiner's public key (PEM) while it waits for its certificate; null otherwise. */
  get joinPublicKeyPem(): string | null {
    return this.#joinKey?.publicKeyPem ?? null;
  }

  /** Key and certificate for HTTPS and NBD; null in a plain cluster. */
  get serverCredentials(): { readonly key: string; readonly cert: string; readonly ca: string } | null {
    const material = this.#material;
    return material === null ? null : { key: material.keyPem, cert: material.certPem, ca: material.caCertPem };
  }

  secureContext(): SecureContext | null {
    const credentials = this.serverCredentials;
    return credentials === null ? null : createSecureContext(credentials);
  }

  requireJoinToken(): string {
    if (!this.enabled) {
      throw new PlinthError('NOT_FOUND', 'this cluster runs without TLS and has no join token: a node joins it with --join alone (docs/security.md "Modes")', { reason: 'tls-off' });
    }
    if (this.#joinToken === null) {
      throw new PlinthError('NOT_FOUND', 'this node has no join token (operator certificates: joiners bring their own tls-cert-file/tls-key-file/tls-ca-file)', { reason: 'no-join-token' });
    }
    return this.#joinToken;
  }

  async issueClientCertificate(request: ClientCertificateRequest): Promise<ClientCertificateBundle> {
    // A bad name is the caller's mistake whatever this node's TLS state: say that first.
    validateClientCertificateRequest(request);
    const material = this.#material;
    if (!this.enabled || material === null) {
      throw new PlinthError('CONFIG_INVALID', 'this cluster runs without TLS: its NBD server takes no client certificates (docs/security.md "Modes")', { reason: 'tls-off' });
    }
    if (material.caKeyPem === null) {
      throw new PlinthError(
        'CONFIG_INVALID',
        'this node runs with operator certificates (tls-cert-file/tls-key-file/tls-ca-file) and holds no CA key: issue NBD client certificates (clientAuth) with your own CA',
        { reason: 'no-ca-key' },
      );
    }
    return issueClientCertificate({ certPem: material.caCertPem, keyPem: material.caKeyPem }, request);
  }

  /** A member signs a joiner's key with the cluster CA. */
  async signJoiner(request: { nodeId: string; publicKeyPem: string; hosts: readonly string[] }): Promise<JoinTlsGrant> {
    const material = this.#material;
    if (material === null || material.caKeyPem === null || this.#joinToken === null) {
      throw new PlinthError('UNAUTHORIZED', 'join refused: this member has no CA key (operator certificates); give the joiner its own tls-cert-file/tls-key-file/tls-ca-file');
    }
    const certPem = await issueNodeCert({ certPem: material.caCertPem, keyPem: material.caKeyPem }, request);
    return { caCertPem: material.caCertPem, caKeyPem: material.caKeyPem, certPem, joinToken: this.#joinToken };
  }

  /** The joiner persists what the member granted (before serving) and uses it from now on. */
  async adopt(grant: JoinTlsGrant): Promise<void> {
    const key = this.#joinKey;
    if (key === null) throw new PlinthError('INTERNAL', 'adopt() without a pending join key');
    if (!isIssuedBy(grant.certPem, grant.caCertPem)) {
      throw new PlinthError('PROTOCOL_ERROR', 'join: the member sent a certificate not signed by the CA it sent', { reason: 'tls-grant' });
    }
    const certifiedKey = new X509Certificate(grant.certPem).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    if (certifiedKey.trim() !== key.publicKeyPem.trim()) {
      throw new PlinthError('PROTOCOL_ERROR', 'join: the member sent a certificate for another key', { reason: 'tls-grant' });
    }
    const material: TlsMaterial = { caCertPem: grant.caCertPem, certPem: grant.certPem, keyPem: key.privateKeyPem, caKeyPem: grant.caKeyPem };
    await writeTlsMaterial(this.#dataDir, material);
    await writeJoinToken(this.#dataDir, grant.joinToken);
    this.#material = material;
    this.#joinToken = grant.joinToken;
    this.sockets.update(material);
  }
}
