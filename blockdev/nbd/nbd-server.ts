import { createServer, type Server, type Socket } from 'node:net';
import type pino from 'pino';
import { PlinthError, toError } from '../../common/plinth-error.js';
import type { ExportProvider } from '../export-provider.js';
import { type NbdLimits, resolveNbdLimits } from './limits.js';
import { BufferPool } from '../buffer-pool.js';
import { NbdConnection } from './nbd-connection.js';

/**
 * The NBD listener: accepts TCP connections, runs one NbdConnection per
 * client, tracks them for force-detach and graceful close. Any failure of a
 * connection stays inside it (invariant 7): the server keeps serving.
 */

export interface NbdServerOptions {
  readonly host: string;
  readonly port: number;
  readonly limits?: Partial<NbdLimits>;
}

export interface NbdServerModules {
  readonly exports: ExportProvider;
  readonly logger: pino.Logger;
}

export interface NbdServer {
  /** Where the server listens (port resolved when 0 was asked for). */
  address(): { host: string; port: number };
  connectionCount(): number;
  /** Hard-disconnect every connection serving `name`; returns how many. Handles are released when their I/O completes. */
  disconnectExport(name: string): number;
  /**
   * Stop accepting, let in-flight requests finish, flush devices, close
   * sockets and release every export. Aborting `signal` skips the wait:
   * sockets are destroyed at once and handles released when their I/O ends.
   */
  close(signal?: AbortSignal): Promise<void>;
}

export async function startNbdServer(options: NbdServerOptions, modules: NbdServerModules): Promise<NbdServer> {
  const limits = resolveNbdLimits(options.limits);
  const server = new TcpNbdServer(limits, modules);
  await server.listen(options.host, options.port);
  return server;
}

class TcpNbdServer implements NbdServer {
  private readonly limits: NbdLimits;
  private readonly modules: NbdServerModules;
  private readonly logger: pino.Logger;
  private readonly server: Server;
  private readonly connections = new Map<string, NbdConnection>();
  /** Large READ replies and WRITE payloads, recycled across this server's connections. */
  private readonly buffers = new BufferPool();
  private nextConnectionNumber = 1;
  private closing: Promise<void> | undefined;

  constructor(limits: NbdLimits, modules: NbdServerModules) {
    this.limits = limits;
    this.modules = modules;
    this.logger = modules.logger.child({ component: 'nbd' });
    // allowHalfOpen: a client that shuts down its sending side still gets its replies.
    this.server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => this.onConnection(socket));
    this.server.maxConnections = limits.maxConnections;
  }

  listen(host: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void => {
        const message = `NBD server cannot listen on ${host}:${port}: ${error.message}`;
        reject(new PlinthError('IO_ERROR', message, { host, port }, { cause: error }));
      };
      this.server.once('error', onError);
      this.server.listen({ host, port }, () => {
        this.server.off('error', onError);
        this.server.on('error', (error) => this.logger.error({ err: error }, 'NBD listener error'));
        const address = this.address();
        this.logger.info(address, 'NBD server listening');
        resolve();
      });
    });
  }

  address(): { host: string; port: number } {
    const address = this.server.address();
    if (address === null || typeof address === 'string') {
      throw new PlinthError('INTERNAL', 'NBD server is not listening on TCP');
    }
    return { host: address.address, port: address.port };
  }

  connectionCount(): number {
    return this.connections.size;
  }

  disconnectExport(name: string): number {
    let count = 0;
    for (const connection of this.connections.values()) {
      if (connection.exportName() === name) {
        connection.disconnect(`export "${name}" force-detached`);
        count += 1;
      }
    }
    return count;
  }

  close(signal?: AbortSignal): Promise<void> {
    this.closing ??= this.closeOnce(signal);
    return this.closing;
  }

  private async closeOnce(signal: AbortSignal | undefined): Promise<void> {
    const stopped = new Promise<void>((resolve) => {
      this.server.close((error) => {
        if (error !== undefined) {
          this.logger.debug({ err: error }, 'NBD listener was not open');
        }
        resolve();
      });
    });
    const connections = [...this.connections.values()];
    this.logger.info({ connections: connections.length }, 'NBD server closing');
    const graceful = Promise.all(connections.map((connection) => connection.shutdown()));
    if (signal !== undefined) {
      const aborted = new Promise<void>((resolve) => {
        const onAbort = (): void => {
          for (const connection of this.connections.values()) {
            connection.disconnect('shutdown aborted');
          }
          void Promise.all(connections.map((connection) => connection.closed)).then(() => resolve());
        };
        if (signal.aborted) {
          onAbort();
        } else {
          signal.addEventListener('abort', onAbort, { once: true });
          void graceful.then(() => signal.removeEventListener('abort', onAbort));
        }
      });
      await Promise.race([graceful, aborted]);
    } else {
      await graceful;
    }
    await stopped;
    this.logger.info('NBD server closed');
  }

  private onConnection(socket: Socket): void {
    if (this.closing !== undefined) {
      socket.destroy();
      return;
    }
    const connectionId = `nbd-${this.nextConnectionNumber}`;
    this.nextConnectionNumber += 1;
    const connection = new NbdConnection(
      { connectionId, limits: this.limits },
      { socket, exports: this.modules.exports, logger: this.logger, buffers: this.buffers },
    );
    this.connections.set(connectionId, connection);
    connection.finished.then(
      () => this.connections.delete(connectionId),
      (error: unknown) => this.logger.error({ err: toError(error), connectionId }, 'NBD connection ended abnormally'),
    );
    connection.start();
  }
}
