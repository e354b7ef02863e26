import { connect as netConnect, createServer as createNetServer, type Server, type Socket } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer, TLSSocket, type Server as TlsServer } from 'node:tls';
import type { Logger } from 'pino';
import type { TlsMaterial } from './tls-files.js';

/**
 * How this node opens and accepts peer-port connections (docs/security.md
 * "Peer traffic"). Every dialer (Raft transport, replica links, peer RPC,
 * join relay) and the one peer listener take these functions, so plain TCP
 * and mutual TLS are one injected choice, made in daemon/main.ts.
 *
 * With TLS the listener asks every client for a certificate but does not
 * refuse one without it during the handshake: a joiner has none yet. The
 * peer listener then admits an unauthenticated connection to the join route
 * only (which checks the join token) and refuses it everywhere else with the
 * reason (`authorization()`). Dialers always present the node certificate
 * and verify the member's against the cluster CA. Host names are not checked:
 * membership is "holds a certificate of this cluster's CA" (and the cluster
 * secret handshakes on top), and peers may listen on 0.0.0.0.
 */
export type PeerConnect = (host: string, port: number) => Socket;

export interface PeerSockets {
  readonly tls: boolean;
  /** Dial a member: mutual TLS with the node certificate when TLS is on. */
  readonly connect: PeerConnect;
  /** Dial a member for a join, before this node has a certificate: TLS without verifying the member. */
  readonly connectForJoin: PeerConnect;
  createServer(onConnection: (socket: Socket) => void): Server;
  /** Use new material from now on (a joiner's certificate arrives after its listener started). */
  update(material: TlsMaterial): void;
  /** null when the connection is authenticated at the TLS layer (or TLS is off), else why not. */
  authorizationFailure(socket: Socket): string | null;
}

const HANDSHAKE_TIMEOUT_MS = 10_000;
const MIN_TLS_VERSION = 'TLSv1.3';

export function plainPeerSockets(): PeerSockets {
  const connect: PeerConnect = (host, port) => netConnect({ host, port });
  return {
    tls: false,
    connect,
    connectForJoin: connect,
    createServer: (onConnection) => createNetServer({ noDelay: true }, onConnection),
    update: () => undefined,
    authorizationFailure: () => null,
  };
}

export function tlsPeerSockets(initial: TlsMaterial, modules: { readonly logger: Logger }): PeerSockets {
  let material = initial;
  const servers = new Set<TlsServer>();
  const serverOptions = (): { key: string; cert: string; ca: string } => ({ key: material.keyPem, cert: material.certPem, ca: material.caCertPem });
  return {
    tls: true,
    connect: (host, port) =>
      tlsConnect({
        host,
        port,
        ...serverOptions(),
        minVersion: MIN_TLS_VERSION,
        rejectUnauthorized: true,
        checkServerIdentity: () => undefined,
      }),
    connectForJoin: (host, port) =>
      // Not verified here on purpose: the member proves the join token over this session (join-token.ts).
      tlsConnect({ host, port, minVersion: MIN_TLS_VERSION, rejectUnauthorized: false }),
    createServer(onConnection) {
      const server = createTlsServer(
        { ...serverOptions(), noDelay: true, requestCert: true, rejectUnauthorized: false, minVersion: MIN_TLS_VERSION, handshakeTimeout: HANDSHAKE_TIMEOUT_MS },
        onConnection,
      );
      server.on('tlsClientError', (err, socket) => {
        modules.logger.warn(
          { remote: socket.remoteAddress, reason: err.message },
          'peer port: TLS handshake failed (a plain-TCP peer, or a node of another cluster? this cluster requires TLS on the peer port)',
        );
      });
      servers.add(server);
      server.once('close', () => servers.delete(server));
      return server;
    },
    update(next) {
      material = next;
      for (const server of servers) server.setSecureContext(serverOptions());
    },
    authorizationFailure(socket) {
      if (!(socket instanceof TLSSocket)) return 'not a TLS connection';
      if (socket.authorized) return null;
      if (Object.keys(socket.getPeerCertificate()).length === 0) return 'peer presented no certificate';
      const reason = socket.authorizationError;
      return `peer certificate not accepted: ${reason instanceof Error ? reason.message : String(reason)}`;
    },
  };
}
