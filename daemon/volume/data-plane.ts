import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import type { Pool } from '../../blockdev/pool/pool-types.js';
import type { ReplicaDatabase } from '../../blockdev/replica/replica-database.js';
import { type ReplicaServer, startReplicaServer } from '../../blockdev/replica/replica-server.js';
import { RebuildReconciler, type RebuildReconcilerOptions } from '../reconciler/rebuild-reconciler.js';
import type { ReplicaReplacementPort } from '../reconciler/replica-replacement.js';
import type { CommandProposer } from '../control/command-proposer.js';
import { createDrainReconciler } from '../reconciler/drain-reconciler.js';
import type { LeaderReconciler } from '../reconciler/leader-reconciler.js';
import { createLocalityReconciler } from '../reconciler/locality-reconciler.js';
import { createRepairReconciler } from '../reconciler/repair-reconciler.js';
import { SessionReplicaSync } from './session-replica-sync.js';
import { SnapshotRebuild } from '../snapshots/snapshot-rebuild.js';
import { SnapshotReplicaClient } from '../snapshots/snapshot-replica-client.js';
import type { DataPlaneCluster } from './data-plane-cluster.js';
import { VolumeSessions, type VolumeSessionsOptions } from './volume-sessions.js';

/**
 * The data plane of one node (issue 4, part B), built by the composition
 * root: the replica server every node runs (it serves this node's replicas
 * to owners elsewhere, and to this node's own sessions in-process), the
 * volume sessions of volumes attached here, the rebuild reconciler, the
 * sync of sessions with the committed replica sets and, given the command
 * log (through the replacement port), the leader's drain and locality
 * reconcilers (issue 4 "Drain" and "Scheduler").
 *
 * Close order is the reverse of start: reconcilers, sessions (drain client
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
  /** This node's previous run ended uncleanly (run-marker.ts): the volumes held here are flagged unclean until repaired (replica-service.ts). */
  readonly uncleanRestart?: boolean;
  readonly sessions?: Omit<VolumeSessionsOptions, 'nodeId'>;
  readonly reconciler?: RebuildReconcilerOptions;
  /** The leader's replica moves (drain, locality); both on by default when the command log is known. */
  readonly moves?: ReplicaMoveOptions;
}

export interface ReplicaMoveOptions {
  readonly intervalMs?: number;
  readonly maxMovingVolumes?: number;
  readonly drain?: boolean;
  readonly locality?: boolean;
  /** Re-replicate volumes left with fewer replicas than their count (node rm). */
  readonly repair?: boolean;
  /** How often owner sessions pick up committed replica.add / replica.remove. */
  readonly syncIntervalMs?: number;
}

export interface DataPlaneModules {
  readonly pool: Pool;
  /** `db.sublevel<string, Buffer>('replica', { valueEncoding: 'buffer' })` (replica-database.ts). */
  readonly db: ReplicaDatabase;
  readonly cluster: DataPlaneCluster;
  /** Replaces replicas lost past their grace period (reconciler/replica-replacement.ts); without it they are only flagged. */
  readonly replacement?: ReplicaReplacementPort;
  /** How replica links dial other nodes: mutual TLS in a TLS cluster (daemon/tls/peer-sockets.ts); plain TCP by default. */
  readonly connectPeer?: (host: string, port: number) => Socket;
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
      ...(options.uncleanRestart === undefined ? {} : { uncleanRestart: options.uncleanRestart }),
    },
    { pool: modules.pool, db: modules.db, logger },
  );
  const sessions = new VolumeSessions(
    { ...options.sessions, nodeId: options.nodeId },
    { cluster: modules.cluster, service: replicaServer.service, secret: options.secret, logger, ...(modules.connectPeer === undefined ? {} : { connectPeer: modules.connectPeer }) },
  );
  const reconciler = new RebuildReconciler(options.reconciler ?? {}, {
    sessions: () => sessions.list(),
    cluster: modules.cluster,
    logger,
    ...(modules.replacement === undefined ? {} : { replacement: modules.replacement }),
    ...(modules.replacement?.commands === undefined ? {} : { snapshots: snapshotRebuild(options, modules, modules.replacement.commands, replicaServer, logger) }),
  });
  reconciler.start();
  const sync = new SessionReplicaSync(
    { nodeId: options.nodeId, ...(options.moves?.syncIntervalMs === undefined ? {} : { intervalMs: options.moves.syncIntervalMs }) },
    { sessions: () => sessions.list(), cluster: modules.cluster, logger },
  );
  sync.start();
  const movers = modules.replacement?.commands === undefined ? [] : startReplicaMovers(options, modules.replacement.commands, logger);
  let closing: Promise<void> | undefined;
  return {
    replicaServer,
    sessions,
    reconciler,
    acceptSocket: (socket) => replicaServer.acceptSocket(socket),
    close: () => {
      closing ??= (async () => {
        await Promise.all(movers.map((mover) => mover.close()));
        await sync.close();
        reconciler.close();
        await sessions.closeAll();
        await reconciler.settled();
        await replicaServer.close();
      })();
      return closing;
    },
  };
}

/** Issue 8: rebuilds give the replica the volume's snapshots too (daemon/snapshots/snapshot-rebuild.ts). */
function snapshotRebuild(options: DataPlaneOptions, modules: DataPlaneModules, commands: CommandProposer, replicaServer: ReplicaServer, logger: Logger): SnapshotRebuild {
  const client = new SnapshotReplicaClient(
    { nodeId: options.nodeId, secret: options.secret },
    { peerAddress: (nodeId) => modules.cluster.peerAddress(nodeId), ...(modules.connectPeer === undefined ? {} : { connectPeer: modules.connectPeer }), logger },
  );
  const ops = replicaServer.service.snapshots;
  return new SnapshotRebuild(
    { nodeId: options.nodeId },
    { pool: modules.pool, localRead: (volumeId, snapshotId, offset, target) => ops.read(volumeId, snapshotId, offset, target), commands, client, logger },
  );
}

/** The leader-side drain and locality reconcilers over the command log; they idle on followers. */
function startReplicaMovers(options: DataPlaneOptions, commands: CommandProposer, logger: Logger): LeaderReconciler[] {
  const moves = options.moves ?? {};
  const modules = {
    state: () => commands.state,
    // A log without a leader (LocalCommandLog, one process) is its own leader.
    isLeader: () => commands.leaderId === undefined || commands.leaderId === options.nodeId,
    propose: (command: Parameters<CommandProposer['propose']>[0]) => commands.propose(command),
    logger,
  };
  const shared = {
    ...(moves.intervalMs === undefined ? {} : { intervalMs: moves.intervalMs }),
    ...(moves.maxMovingVolumes === undefined ? {} : { maxMovingVolumes: moves.maxMovingVolumes }),
  };
  const movers: LeaderReconciler[] = [];
  if (moves.drain !== false) movers.push(createDrainReconciler(shared, modules));
  if (moves.locality !== false) movers.push(createLocalityReconciler(shared, modules));
  if (moves.repair !== false) movers.push(createRepairReconciler(shared, modules));
  for (const mover of movers) mover.start();
  return movers;
}
