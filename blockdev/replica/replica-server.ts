import { randomBytes as cryptoRandomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { PlinthError } from '../../common/plinth-error.js';
import type { Pool } from '../pool/pool-types.js';
import { ReplicaConnection, type ReplicaConnectionLimits } from './replica-connection.js';
import type { ReplicaDatabase } from './replica-database.js';
import { DEFAULT_MAX_IO_BYTES, maxFrameBytesFor } from './replica-protocol.js';
import { ReplicaService } from './replica-service.js';

/**
 * The replica server on the peer port: a small TCP listener in front of
 * ReplicaConnection (one per accepted socket) and the node-wide
 * ReplicaService. `acceptSocket` lets the daemon feed it sockets from a
 * listener it shares with Raft.
 */

export interface ReplicaServerOptions {
  readonly host: string;
  readonly port: number;
  /** This node's id, proven in the HELLO handshake. */
  readonly nodeId: string;
  /** The cluster secret both sides hold. */
  readonly secret: Buffer;
  readonly maxIoBytes?: number;
  readonly maxConnections?: number;
  readonly limits?: Partial<Omit<ReplicaConnectionLimits, 'maxFrameBytes'>>;
  /**
   * This node's previous run ended uncleanly (run-marker.ts): every volume
   * held here is flagged before the server listens, and says so in its
   * activity answers until its owner repairs it (failover source order).
   */
  readonly uncleanRestart?: boolean;
  /** Activity-log region size; default 4 MiB. */
  readonly regionSizeBytes?: number;
}

export interface ReplicaServerModules {
  readonly pool: Pool;
  /** The sublevel of replica-database.ts. */
  readonly db: ReplicaDatabase;
  readonly logger: Logger;
  readonly randomBytes?: (size: number) => Buffer;
}

export interface ReplicaServer {
  address(): { host: string; port: number };
  connectionCount(): number;
  /** Serve a socket accepted elsewhere (a shared peer port). */
  acceptSocket(socket: Socket): void;
  /** The local API (dirty regions, activity log) for this node's controller. */
  readonly service: ReplicaService;
  /** Stop listening and cut every connection; in-flight requests finish against the stores first. */
  close(): Promise<void>;
}

export const DEFAULT_REPLICA_LIMITS: Omit<ReplicaConnectionLimits, 'maxFrameBytes'> = {
  maxInFlightRequests: 128,
  maxInFlightBytes: 64 * 1024 * 1024,
  handshakeTimeoutMs: 5000,
};

export async function startReplicaServer(options: ReplicaServerOptions, modules: ReplicaServerModules): Promise<ReplicaServer> {
  const server = new TcpReplicaServer(options, modules);
  if (options.uncleanRestart === true) await server.service.recordUncleanStart();
  await server.listen();
  return server;
}

class TcpReplicaServer implements ReplicaServer {
  readonly service: ReplicaService;
  readonly #options: ReplicaServerOptions;
  readonly #modules: ReplicaServerModules;
  readonly #logger: Logger;
  readonly #limits: ReplicaConnectionLimits;
  readonly #server: Server;
  readonly #connections = new Set<ReplicaConnection>();
  #nextConnectionNumber = 1;
  #closing: Promise<void> | undefined;

  constructor(options: ReplicaServerOptions, modules: ReplicaServerModules) {
    this.#options = options;
    this.#modules = modules;
    this.#logger = modules.logger.child({ component: 'replica-server' });
    const maxIoBytes = options.maxIoBytes ?? DEFAULT_MAX_IO_BYTES;
    this.#limits = { ...DEFAULT_REPLICA_LIMITS, ...options.limits, maxFrameBytes: maxFrameBytesFor(maxIoBytes) };
    this.service = new ReplicaService(
      {
        maxIoBytes,
        ...(options.regionSizeBytes === undefined ? {} : { regionSizeBytes: options.regionSizeBytes }),
      },
      { pool: modules.pool, db: modules.db, logger: this.#logger },
    );
    this.#server = createServer({ noDelay: true }, (socket) => this.acceptSocket(socket));
    this.#server.maxConnections = options.maxConnections ?? 256;
  }

  listen(): Promise<void> {
    const { host, port } = this.#options;
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void => {
        reject(new PlinthError('IO_ERROR', `replica server cannot listen on ${host}:${port}: ${error.message}`, { host, port }, { cause: error }));
      };
      this.#server.once('error', onError);
      this.#server.listen({ host, port }, () => {
        this.#server.off('error', onError);
        this.#server.on('error', (error) => this.#logger.error({ err: error }, 'replica listener error'));
        this.#logger.info(this.address(), 'replica server listening');
        resolve();
      });
    });
  }

  address(): { host: string; port: number } {
    const address = this.#server.address();
    if (address === null || typeof address === 'string') throw new PlinthError('INTERNAL', 'replica server is not listening on TCP');
    return { host: address.address, port: address.port };
  }

  connectionCount(): number {
    return this.#connections.size;
  }

  acceptSocket(socket: Socket): void {
    if (this.#closing !== undefined) {
      socket.destroy();
      return;
    }
    const connection = new ReplicaConnection(
      { connectionId: `replica-${this.#nextConnectionNumber}`, nodeId: this.#options.nodeId, secret: this.#options.secret, limits: this.#limits },
      { socket, service: this.service, logger: this.#logger, randomBytes: this.#modules.randomBytes ?? cryptoRandomBytes },
    );
    this.#nextConnectionNumber += 1;
    this.#connections.add(connection);
    void connection.finished.then(() => this.#connections.delete(connection));
  }

  close(): Promise<void> {
    this.#closing ??= this.#closeOnce();
    return this.#closing;
  }

  async #closeOnce(): Promise<void> {
    const stopped = new Promise<void>((resolve) => {
      this.#server.close((error) => {
        if (error !== undefined) this.#logger.debug({ err: error }, 'replica listener was not open');
        resolve();
      });
    });
    const connections = [...this.#connections];
    for (const connection of connections) connection.close('server closing');
    await Promise.all(connections.map((connection) => connection.finished));
    await stopped;
    this.service.close();
    this.#logger.info('replica server closed');
  }
}
