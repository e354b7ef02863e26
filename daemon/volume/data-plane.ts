import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Pool } from '../../blockdev/pool/pool-types.js';
import type { ReplicaDatabase } from '../../blockdev/replica/replica-database.js';
import { type ReplicaServer, startReplicaServer } from '../../blockdev/replica/replica-server.js';
import { RebuildReconciler, type RebuildReconcilerOptions } from '../reconciler/rebuild-reconciler.js';
import type { ReplicaReplacementPort } from '../reconciler/replica-replacement.js';
import type { DataPlaneCluster } from './data-plane-cluster.js';
import { VolumeSessions, type VolumeSessionsOptions } from './volume-sessions.js';

/**
 * The data plane of one node (issue 4, part B), built by the composition
 * root: the replica server every node runs (it serves this node's replicas
 * to owners elsewhere, and to this node's own sessions in-process), the
 * volume sessions of volumes attached here, and the rebuild reconciler.
 *
 * Close order is the reverse of start: reconciler, sessions (drain client
 * I/O), then the replica server.
 */

export interface DataPlaneOptions {
  readonly nodeId: string;
  /** The cluster secret both ends of a replica link prove in HELLO. */
  readonly secret: Buffer;
  /**
   * Where the replica server listens itself. With a shared peer port the
   * daemon hands it sockets through acceptSocket instead and this may stay
   * the default (an ephemeral loopback port nobody else is told about).
   */
  readonly listenHost?: string;
  readonly listenPort?: number;
  readonly maxIoBytes?: number;
  readonly sessions?: Omit<VolumeSessionsOptions, 'nodeId'>;
  readonly reconciler?: RebuildReconcilerOptions;
}

export interface DataPlaneModules {
  readonly pool: Pool;
  /** `db.sublevel<string, Buffer>('replica', { valueEncoding: 'buffer' })` (replica-database.ts). */
  readonly db: ReplicaDatabase;
  readonly cluster: DataPlaneCluster;
  /** Replaces replicas lost past their grace period (reconciler/replica-replacement.ts); without it they are only flagged. */
  readonly replacement?: ReplicaReplacementPort;
  readonly logger: Logger;
}

export interface DataPlane {
  readonly replicaServer: ReplicaServer;
  readonly sessions: VolumeSessions;
  readonly reconciler: RebuildReconciler;
  /** A socket from the shared peer port that the demux classified as replica traffic. */
  acceptSocket(socket: Socket): void;
  close(): Promise<void>;
}

export async function startDataPlane(options: DataPlaneOptions, modules: DataPlaneModules): Promise<DataPlane> {
  const logger = modules.logger.child({ component: 'data-plane' });
  const replicaServer = await startReplicaServer(
    {
      host: options.listenHost ?? '127.0.0.1',
      port: options.listenPort ?? 0,
      nodeId: options.nodeId,
      secret: options.secret,
      ...(options.maxIoBytes === undefined ? {} : { maxIoBytes: options.maxIoBytes }),
    },
    { pool: modules.pool, db: modules.db, logger },
  );
  const sessions = new VolumeSessions(
    { ...options.sessions, nodeId: options.nodeId },
    { cluster: modules.cluster, service: replicaServer.service, secret: options.secret, logger },
  );
  const reconciler = new RebuildReconciler(options.reconciler ?? {}, {
    sessions: () => sessions.list(),
    cluster: modules.cluster,
    logger,
    ...(modules.replacement === undefined ? {} : { replacement: modules.replacement }),
  });
  reconciler.start();
  let closing: Promise<void> | undefined;
  return {
    replicaServer,
    sessions,
    reconciler,
    acceptSocket: (socket) => replicaServer.acceptSocket(socket),
    close: () => {
      closing ??= (async () => {
        reconciler.close();
        await sessions.closeAll();
        await reconciler.settled();
        await replicaServer.close();
      })();
      return closing;
    },
  };
}
