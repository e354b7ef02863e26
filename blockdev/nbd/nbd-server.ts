import type pino from 'pino';
import type { ExportProvider } from '../export-provider.js';
import { type NbdLimits, resolveNbdLimits } from './limits.js';
import { BufferPool } from '../buffer-pool.js';
import { NbdConnection } from './nbd-connection.js';
import { ProtocolListener } from '../protocol-listener.js';
import type { NbdTlsOptions } from './tls-upgrade.js';

export type { NbdTlsOptions } from './tls-upgrade.js';

/**
 * The NBD listener: accepts TCP connections, runs one NbdConnection per
 * client, tracks them for force-detach and graceful close (the shell is
 * shared with iSCSI: ../protocol-listener.ts). Any failure of a
 * connection stays inside it (invariant 7): the server keeps serving.
 */

export interface NbdServerOptions {
  readonly host: string;
  readonly port: number;
  readonly limits?: Partial<NbdLimits>;
  /**
   * NBD_OPT_STARTTLS with this certificate (proto.md "TLS support"). With
   * `required` the server runs FORCEDTLS: no option but STARTTLS/ABORT is
   * answered in clear, so no export name leaks. Absent: NOTLS.
   */
  readonly tls?: NbdTlsOptions;
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
  const logger = modules.logger.child({ component: 'nbd' });
  const tls: NbdTlsOptions | undefined = options.tls;
  /** Large READ replies and WRITE payloads, recycled across this server's connections. */
  const buffers = new BufferPool();
  const listener = new ProtocolListener<NbdConnection>(
    {
      protocol: 'NBD',
      connectionIdPrefix: 'nbd',
      maxConnections: limits.maxConnections,
      // A client that shuts down its sending side still gets its replies.
      allowHalfOpen: true,
      detachReason: (name) => `export "${name}" force-detached`,
    },
    {
      logger,
      // NbdConnection.closed settles when the socket goes; .finished once in-flight I/O ended and the export is released.
      createConnection: (socket, connectionId) =>
        new NbdConnection(
          { connectionId, limits, ...(tls === undefined ? {} : { tls }) },
          { socket, exports: modules.exports, logger, buffers },
        ),
    },
  );
  await listener.listen(options.host, options.port);
  logger.info({ tls: tls === undefined ? 'off' : tls.required ? 'required' : 'optional' }, 'NBD TLS mode');
  return listener;
}
