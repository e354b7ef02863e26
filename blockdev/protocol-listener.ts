import { createServer, type Server, type Socket } from 'node:net';
import type pino from 'pino';
import { PlinthError, toError } from '../common/plinth-error.js';

/**
 * The TCP listener shell NBD (nbd/nbd-server.ts) and iSCSI
 * (iscsi/iscsi-server.ts) share: listen with a clear IO_ERROR, track one
 * connection object per client, force-detach per export, and close
 * gracefully under an AbortSignal. What a connection does on the wire, and
 * how it releases its export or session, stays in each protocol's files.
 * Any failure of a connection stays inside it (invariant 7): the listener
 * keeps serving.
 */

/** What the listener needs of one protocol connection. */
export interface ListenedConnection {
  /** The export (volume) this connection serves, once negotiated. */
  exportName(): string | undefined;
  /** Begin serving the socket. */
  start(): void;
  /** Hard disconnect now; resources are released when in-flight I/O ends. */
  disconnect(reason: string): void;
  /** Stop reading, let in-flight requests finish and answer, flush, close. */
  shutdown(): Promise<void>;
  /** Settles once the socket is gone: what an aborted close waits for. */
  readonly closed: Promise<void>;
  /** Settles once the connection is gone and its resources released. */
  readonly finished: Promise<void>;
}

export interface ProtocolListenerOptions {
  /** Protocol name in messages and logs ("NBD", "iSCSI"). */
  readonly protocol: string;
  /** Connection ids are `${connectionIdPrefix}-${n}`. */
  readonly connectionIdPrefix: string;
  readonly maxConnections: number;
  /** Keep the sending side open after the client's FIN, so it still gets its replies. */
  readonly allowHalfOpen: boolean;
  /** The reason a force-detached connection logs, e.g. `export "vol" force-detached`. */
  readonly detachReason: (name: string) => string;
}

export interface ProtocolListenerModules<C extends ListenedConnection> {
  /** Logger already scoped to the protocol's component. */
  readonly logger: pino.Logger;
  readonly createConnection: (socket: Socket, connectionId: string) => C;
}

export class ProtocolListener<C extends ListenedConnection> {
  private readonly options: ProtocolListenerOptions;
  private readonly modules: ProtocolListenerModules<C>;
  private readonly logger: pino.Logger;
  private readonly server: Server;
  private readonly connections = new Map<string, C>();
  private nextConnectionNumber = 1;
  private closing: Promise<void> | undefined;

  constructor(options: ProtocolListenerOptions, modules: ProtocolListenerModules<C>) {
    this.options = options;
    this.modules = modules;
    this.logger = modules.logger;
    this.server = createServer({ allowHalfOpen: options.allowHalfOpen, noDelay: true }, (socket) => this.onConnection(socket));
    this.server.maxConnections = options.maxConnections;
  }

  listen(host: string, port: number): Promise<void> {
    const { protocol } = this.options;
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void => {
        const message = `${protocol} server cannot listen on ${host}:${port}: ${error.message}`;
        reject(new PlinthError('IO_ERROR', message, { host, port }, { cause: error }));
      };
      this.server.once('error', onError);
      this.server.listen({ host, port }, () => {
        this.server.off('error', onError);
        this.server.on('error', (error) => this.logger.error({ err: error }, `${protocol} listener error`));
        this.logger.info(this.address(), `${protocol} server listening`);
        resolve();
      });
    });
  }

  /** Where the server listens (port resolved when 0 was asked for). */
  address(): { host: string; port: number } {
    const address = this.server.address();
    if (address === null || typeof address === 'string') {
      throw new PlinthError('INTERNAL', `${this.options.protocol} server is not listening on TCP`);
    }
    return { host: address.address, port: address.port };
  }

  connectionCount(): number {
    return this.connections.size;
  }

  /** Hard-disconnect every connection serving `name`; returns how many. */
  disconnectExport(name: string): number {
    let count = 0;
    for (const connection of this.connections.values()) {
      if (connection.exportName() === name) {
        connection.disconnect(this.options.detachReason(name));
        count += 1;
      }
    }
    return count;
  }

  /**
   * Stop accepting, shut every connection down gracefully and wait for it.
   * Aborting `signal` skips the wait: sockets are destroyed at once and
   * resources released when their I/O ends (drain, never sleep).
   */
  close(signal?: AbortSignal): Promise<void> {
    this.closing ??= this.closeOnce(signal);
    return this.closing;
  }

  private async closeOnce(signal: AbortSignal | undefined): Promise<void> {
    const { protocol } = this.options;
    const stopped = new Promise<void>((resolve) => {
      this.server.close((error) => {
        if (error !== undefined) this.logger.debug({ err: error }, `${protocol} listener was not open`);
        resolve();
      });
    });
    const connections = [...this.connections.values()];
    this.logger.info({ connections: connections.length }, `${protocol} server closing`);
    const graceful = Promise.all(connections.map((connection) => connection.shutdown()));
    if (signal !== undefined) {
      await Promise.race([graceful, this.abortedClose(signal, connections, graceful)]);
    } else {
      await graceful;
    }
    await stopped;
    this.logger.info(`${protocol} server closed`);
  }

  /** Settles once `signal` aborted and every connection's socket is gone; never if the graceful close wins. */
  private abortedClose(signal: AbortSignal, connections: readonly C[], graceful: Promise<unknown>): Promise<void> {
    return new Promise<void>((resolve) => {
      const onAbort = (): void => {
        for (const connection of connections) connection.disconnect('shutdown aborted');
        void Promise.all(connections.map((connection) => connection.closed)).then(() => resolve());
      };
      if (signal.aborted) {
        onAbort();
      } else {
        signal.addEventListener('abort', onAbort, { once: true });
        void graceful.then(() => signal.removeEventListener('abort', onAbort));
      }
    });
  }

  private onConnection(socket: Socket): void {
    if (this.closing !== undefined) {
      socket.destroy();
      return;
    }
    const connectionId = `${this.options.connectionIdPrefix}-${this.nextConnectionNumber}`;
    this.nextConnectionNumber += 1;
    const connection = this.modules.createConnection(socket, connectionId);
    this.connections.set(connectionId, connection);
    connection.finished
      .catch((error: unknown) => this.logger.error({ err: toError(error), connectionId }, `${this.options.protocol} connection ended abnormally`))
      .finally(() => this.connections.delete(connectionId));
    connection.start();
  }
}
