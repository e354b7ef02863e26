import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import type pino from 'pino';
import { PlinthError, toError } from '../../common/plinth-error.js';
import type { ExportProvider } from '../export-provider.js';
import { BufferPool } from '../buffer-pool.js';
import { type ChapSecretProvider, NO_CHAP } from './chap.js';
import { IscsiConnection, type IscsiTimers, REAL_TIMERS } from './iscsi-connection.js';
import { SessionTable } from './iscsi-session.js';
import { type IscsiLimits, resolveIscsiLimits } from './limits.js';
import type { ScsiTargetRegistry } from './scsi/scsi-task.js';

/**
 * The iSCSI listener (RFC 7143 target, one target per volume): accepts TCP
 * connections, runs one IscsiConnection each, keeps the node's session
 * table, and mirrors the NBD server's lifecycle (nbd-server.ts): force-
 * detach per volume, graceful close under an AbortSignal. Any failure of a
 * connection stays inside it (invariant 7).
 */

export interface IscsiServerOptions {
  readonly host: string;
  readonly port: number;
  /**
   * The address SendTargets advertises (TargetAddress); defaults to the
   * listening address, or the connection's local address when listening
   * on a wildcard.
   */
  readonly portalAddress?: { readonly host: string; readonly port: number };
  readonly limits?: Partial<IscsiLimits>;
}

export interface IscsiServerModules {
  readonly exports: ExportProvider;
  readonly registry: ScsiTargetRegistry;
  /** CHAP secrets; without it no target asks for CHAP. */
  readonly chap?: ChapSecretProvider;
  readonly timers?: IscsiTimers;
  readonly randomBytes?: (count: number) => Buffer;
  readonly logger: pino.Logger;
}

export interface IscsiServer {
  address(): { host: string; port: number };
  connectionCount(): number;
  /** Hard-disconnect every session serving volume `name`; returns how many. */
  disconnectExport(name: string): number;
  /** Stop accepting, let running commands finish and answer, flush, close. Aborting `signal` drops everything at once. */
  close(signal?: AbortSignal): Promise<void>;
}

/** The one target portal group of every node (RFC 7143 §13.9). */
const PORTAL_GROUP_TAG = 1;

export async function startIscsiServer(options: IscsiServerOptions, modules: IscsiServerModules): Promise<IscsiServer> {
  const server = new TcpIscsiServer(options, modules);
  await server.listen(options.host, options.port);
  return server;
}

class TcpIscsiServer implements IscsiServer {
  private readonly options: IscsiServerOptions;
  private readonly limits: IscsiLimits;
  private readonly modules: IscsiServerModules;
  private readonly logger: pino.Logger;
  private readonly server: Server;
  private readonly connections = new Map<string, IscsiConnection>();
  private readonly sessions = new SessionTable<IscsiConnection>();
  /** Write data assembled from several PDUs, recycled across connections (bounded idle bytes, buffer-pool.ts). */
  private readonly dataBuffers = new BufferPool();
  private nextConnectionNumber = 1;
  private closing: Promise<void> | undefined;

  constructor(options: IscsiServerOptions, modules: IscsiServerModules) {
    this.options = options;
    this.limits = resolveIscsiLimits(options.limits);
    this.modules = modules;
    this.logger = modules.logger.child({ component: 'iscsi' });
    this.server = createServer({ noDelay: true }, (socket) => this.onConnection(socket));
    this.server.maxConnections = this.limits.maxConnections;
  }

  listen(host: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (error: Error): void => {
        reject(new PlinthError('IO_ERROR', `iSCSI server cannot listen on ${host}:${port}: ${error.message}`, { host, port }, { cause: error }));
      };
      this.server.once('error', onError);
      this.server.listen({ host, port }, () => {
        this.server.off('error', onError);
        this.server.on('error', (error) => this.logger.error({ err: error }, 'iSCSI listener error'));
        this.logger.info(this.address(), 'iSCSI server listening');
        resolve();
      });
    });
  }

  address(): { host: string; port: number } {
    const address = this.server.address();
    if (address === null || typeof address === 'string') {
      throw new PlinthError('INTERNAL', 'iSCSI server is not listening on TCP');
    }
    return { host: address.address, port: address.port };
  }

  connectionCount(): number {
    return this.connections.size;
  }

  disconnectExport(name: string): number {
    let count = 0;
    for (const connection of this.connections.values()) {
      if (connection.volumeName() === name) {
        connection.disconnect(`volume "${name}" force-detached`);
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
        if (error !== undefined) this.logger.debug({ err: error }, 'iSCSI listener was not open');
        resolve();
      });
    });
    const connections = [...this.connections.values()];
    this.logger.info({ connections: connections.length }, 'iSCSI server closing');
    const graceful = Promise.all(connections.map((connection) => connection.shutdown()));
    if (signal !== undefined) {
      const aborted = new Promise<void>((resolve) => {
        const onAbort = (): void => {
          for (const connection of connections) connection.disconnect('shutdown aborted');
          void Promise.all(connections.map((connection) => connection.finished)).then(() => resolve());
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
    this.logger.info('iSCSI server closed');
  }

  private portalFor(socket: Socket): { host: string; port: number; portalGroupTag: number } {
    const configured = this.options.portalAddress;
    if (configured !== undefined) return { ...configured, portalGroupTag: PORTAL_GROUP_TAG };
    const listening = this.address();
    const wildcard = listening.host === '0.0.0.0' || listening.host === '::';
    const host = wildcard ? (socket.localAddress ?? listening.host).replace(/^::ffff:/, '') : listening.host;
    return { host, port: listening.port, portalGroupTag: PORTAL_GROUP_TAG };
  }

  private onConnection(socket: Socket): void {
    if (this.closing !== undefined) {
      socket.destroy();
      return;
    }
    const connectionId = `iscsi-${this.nextConnectionNumber}`;
    this.nextConnectionNumber += 1;
    const connection = new IscsiConnection(
      { connectionId, limits: this.limits, portal: this.portalFor(socket) },
      {
        socket,
        exports: this.modules.exports,
        registry: this.modules.registry,
        sessions: this.sessions,
        chapSecrets: this.modules.chap ?? NO_CHAP,
        randomBytes: this.modules.randomBytes ?? randomBytes,
        timers: this.modules.timers ?? REAL_TIMERS,
        logger: this.logger,
        dataBuffers: this.dataBuffers,
      },
    );
    this.connections.set(connectionId, connection);
    connection.finished.then(
      () => this.connections.delete(connectionId),
      (error: unknown) => this.logger.error({ err: toError(error), connectionId }, 'iSCSI connection ended abnormally'),
    );
    connection.start();
  }
}
