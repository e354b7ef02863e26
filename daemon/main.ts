import { mkdir } from 'node:fs/promises';
import type { SecureContext } from 'node:tls';
import { hostname as osHostname } from 'node:os';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { PlinthError, toError } from '../common/plinth-error.js';
import { openPool } from '../blockdev/pool/open-pool.js';
import type { DiskSpec, Pool } from '../blockdev/pool/pool-types.js';
import { startNbdServer, type NbdServer } from '../blockdev/nbd/nbd-server.js';
import { startIscsiServer, type IscsiServer } from '../blockdev/iscsi/iscsi-server.js';
import { createScsiTargetRegistry } from '../blockdev/iscsi/scsi/scsi-target-registry.js';
import { buildApiApp } from '../api/build-api-app.js';
import { formatHostPort, type Config, type HostPort } from './config/config-types.js';
import type { CommandProposer } from './control/command-proposer.js';
import { LocalControlPlane } from './control/local-control-plane.js';
import { rebuildProgressByNode } from './control/rebuild-progress.js';
import { createClusterReservationStore } from './control/scsi-reservation-store.js';
import type { RebuildProgressView } from './control-plane.js';
import { ReadinessTracker } from './control/readiness-tracker.js';
import { VolumeExports } from './control/volume-exports.js';
import { ensureApiToken } from './lifecycle/api-token.js';
import { CapacityReporter } from './cluster/capacity-reporter.js';
import { serveJoinConnection } from './cluster/join-protocol.js';
import { LivenessMonitor } from './cluster/liveness-monitor.js';
import { isReplicaConnection, JOIN_MAGIC, magicAt, PeerListener } from './cluster/peer-listener.js';
import { startClusterNode, type ClusterNode } from './cluster/start-cluster-node.js';
import { loadNodeId } from './lifecycle/node-identity.js';
import { openNodeDatabase, type NodeDatabase } from './lifecycle/open-database.js';
import { ShutdownStack } from './lifecycle/shutdown-stack.js';
import { createDaemonMetrics } from './metrics/daemon-metrics.js';
import type { RaftMetricsSource } from './metrics/raft-metrics.js';
import { VolumeIoRecorder } from './metrics/volume-io-stats.js';
import { AppliedStateWatcher } from './volume/applied-state-watcher.js';
import type { AppliedListener } from './cluster/cluster-state-machine.js';
import { startDataPlane, type DataPlane } from './volume/data-plane.js';
import { DrainAttachments } from './reconciler/drain-attachments.js';
import { openRunMarker } from './lifecycle/run-marker.js';
import { proposerCluster } from './volume/proposer-cluster.js';
import { proposerReplacementPort } from './reconciler/replica-replacement.js';
import type { VolumeSessions } from './volume/volume-sessions.js';
import { createIscsiChapSecrets } from './control/iscsi-chap-secrets.js';
import { NodeTls } from './tls/node-tls.js';
import type { LogRing } from './logging/log-ring.js';
import { createSupportService, type SupportService } from './support/support-service.js';
import { createSnapshotServices, type SnapshotServices } from './snapshots/snapshot-services.js';
import { createSendReceiveServices } from './snapshots/send-receive-services.js';

export interface DaemonOptions {
  readonly config: Config;
  readonly version: string;
  /** Cluster timing; defaults in DEFAULT_CLUSTER_TUNING (env PLINTH_RAFT_TICK_MS, PLINTH_NODE_DOWN_AFTER_MS in plinthd). */
  readonly cluster?: Partial<ClusterTuning>;
  /** Serve the test-only API (/v1/debug/failpoints); plinthd sets it from PLINTH_TEST_API=1 only. */
  readonly testApi?: boolean;
}

export interface ClusterTuning {
  /** Raft tick; the election timeout is 10-20 ticks (1-2 s by default). */
  readonly raftTickMs: number;
  /** The leader commits node.down after this long without a heartbeat answer. */
  readonly nodeDownAfterMs: number;
  /** At most one node.capacity per this interval (and only on change). */
  readonly capacityReportMs: number;
  /** Bound on start-up waits: election, catching up, joining. */
  readonly startTimeoutMs: number;
}

export const DEFAULT_CLUSTER_TUNING: ClusterTuning = {
  raftTickMs: 100,
  nodeDownAfterMs: 5000,
  capacityReportMs: 30_000,
  startTimeoutMs: 30_000,
};

export interface DaemonModules {
  readonly logger: Logger;
  readonly hostname?: () => string;
  /** The recent log lines `logger` writes (createLogger's ring), for support bundles; absent: bundles carry no logs. */
  readonly logRing?: LogRing;
}

export interface RunningDaemon {
  readonly nodeId: string;
  readonly dataDir: string;
  readonly apiAddress: HostPort;
  readonly nbdAddress: HostPort;
  readonly iscsiAddress: HostPort;
  readonly peerAddress: HostPort;
  /**
   * The shared peer port. The data plane adds its route here:
   * `peerListener.route('replica', isReplicaConnection, (socket) => replicaServer.acceptSocket(socket))`.
   */
  readonly peerListener: PeerListener;
  /**
   * Graceful stop in reverse start order: stop accepting, drain in-flight
   * NBD I/O, flush and close the pool, close the db. Aborting `signal`
   * skips the waiting (a second Ctrl-C). Idempotent.
   */
  close(signal?: AbortSignal): Promise<void>;
}

/**
 * The composition root: the one place that builds the real modules and
 * wires them (STYLE habit 2). Start order = dependency order; every started
 * piece registers its closer so a failure half-way cleans up behind itself.
 */
export async function startDaemon(options: DaemonOptions, modules: DaemonModules): Promise<RunningDaemon> {
  const { config } = options;
  const logger = modules.logger;
  const stack = new ShutdownStack(logger);
  const neverAborted = new AbortController().signal;
  try {
    return await startInto(stack, options, modules);
  } catch (err) {
    await stack.closeAll(neverAborted).catch((closeErr: unknown) => logger.error({ err: closeErr }, 'cleanup after a failed start failed'));
    throw err;
  }
}

async function startInto(stack: ShutdownStack, options: DaemonOptions, modules: DaemonModules): Promise<RunningDaemon> {
  const { config, version } = options;
  const dataDir = resolve(config.dataDir);
  const db = await openNodeDatabase(dataDir);
  stack.push('db', () => db.close());
  // Closed just before the db, after every pool store flushed: only a clean shutdown removes it.
  const runMarker = await openRunMarker(dataDir, { logger: modules.logger });
  stack.push('run marker', () => runMarker.markClean());
  const nodeId = await loadNodeId({
    configured: config.nodeId,
    configuredSource: config.sources['node-id'] ?? '--node-id',
    hostname: (modules.hostname ?? osHostname)(),
    dataDir,
  });
  // Every line from here on says which node wrote it (several share a journal in e2e tests).
  const logger = modules.logger.child({ nodeId });
  const tuning = { ...DEFAULT_CLUSTER_TUNING, ...options.cluster };

  // TLS or plain is decided before anything listens (docs/security.md "Modes").
  const tls = await NodeTls.prepare(
    { dataDir, nodeId, settings: config.tls, listenHosts: [config.api.host, config.peer.host, config.nbd.host], joining: config.join !== null, joinToken: config.joinToken },
    { logger },
  );
  // The one peer port: Raft, joins, forwarded proposals and (part B) replication.
  const peerListener = new PeerListener({ listen: config.peer }, { logger, sockets: tls.sockets });
  const peerAddress = await peerListener.listen();
  stack.push('peer port', () => peerListener.close());
  const cluster = await startClusterNode(
    {
      nodeId,
      dataDir,
      addresses: { ...addressesOf(config), peer: formatHostPort(peerAddress) },
      labels: config.labels,
      peerAddress,
      join: config.join,
      tickMs: tuning.raftTickMs,
      startTimeoutMs: tuning.startTimeoutMs,
    },
    { raftDb: db.sublevel<string, Buffer>('raft', { valueEncoding: 'buffer' }), peerListener, tls, logger },
  );
  stack.push('raft', () => cluster.stop());
  const commands = cluster.commands;
  const token = await ensureApiToken(dataDir, { logger });
  peerListener.route('join', magicAt(0, JOIN_MAGIC), (socket) =>
    serveJoinConnection(socket, { raft: cluster.raft, commands, secret: cluster.secret, apiToken: token, tls, logger }),
  { unauthenticated: true });

  const pool = await openNodePool(config, dataDir, db, logger);
  stack.push('pool', () => pool.close());
  startClusterDuties(stack, { nodeId, tuning }, { cluster, pool, logger });
  const support = createSupportService({ nodeId, version, config }, { cluster, pool, logRing: modules.logRing ?? null, apiToken: token, logger });
  const dataPlane = await startNodeDataPlane(stack, { nodeId, uncleanRestart: runMarker.previousRunEndedUncleanly }, { cluster, pool, db, peerListener, tls, logger });
  // Issue 8: snapshots, clones, revert and `volume@snapshot` exports (daemon/snapshots/).
  const snapshots = createSnapshotServices(
    { nodeId, secret: cluster.secret },
    { commands, pool, ops: dataPlane.replicaServer.service.snapshots, sessions: dataPlane.sessions, connectPeer: tls.sockets.connect, callMember: (id, request, call) => commands.callMember(id, request, call), logger },
  );
  commands.serveMemberOps((request) => snapshots.serveMemberOp(request));
  stack.push('snapshot write pauses', async () => snapshots.close());

  const { apiAddress, nbdAddress, iscsiAddress } = await startFrontEnds(
    stack,
    { config, nodeId, version, token, testApi: options.testApi === true, tls },
    { commands, onApplied: (listener) => cluster.stateMachine.onApplied(listener), pool, sessions: dataPlane.sessions, rebuildProgress: (volume) => rebuildProgressByNode(dataPlane.reconciler.views(volume)), fencedLocally: (volumeId, generation) => dataPlane.replicaServer.service.isFenced(volumeId, generation), forgetReplica: (volumeId) => dataPlane.replicaServer.service.forget(volumeId), raft: raftMetricsSource(cluster), support, snapshots, deleteSnapshot: (volumeId, snapshotId) => dataPlane.replicaServer.service.snapshots.deleteSnapshot(volumeId, snapshotId), logger },
  );
  logger.info(
    { dataDir, api: formatHostPort(apiAddress), nbd: formatHostPort(nbdAddress), iscsi: formatHostPort(iscsiAddress), peer: formatHostPort(peerAddress), mode: cluster.mode, tls: tls.enabled, version },
    'plinthd ready',
  );
  return {
    nodeId,
    dataDir,
    apiAddress,
    nbdAddress,
    iscsiAddress,
    peerAddress,
    peerListener,
    close: (signal = new AbortController().signal) => stack.closeAll(signal),
  };
}

/**
 * What clients see: the exports (over the data plane's sessions), the
 * control plane, then the NBD and API listeners. Readiness flips as each
 * listens and back to "stopping" first on shutdown.
 */
async function startFrontEnds(
  stack: ShutdownStack,
  options: { readonly config: Config; readonly nodeId: string; readonly version: string; readonly token: string; readonly testApi: boolean; readonly tls: NodeTls },
  modules: {
    readonly commands: CommandProposer;
    /** Every applied Raft entry (ClusterStateMachine.onApplied); returns an unsubscribe. */
    readonly onApplied: (listener: AppliedListener) => () => void;
    readonly pool: Pool;
    readonly sessions: VolumeSessions;
    readonly rebuildProgress: (volume: string) => ReadonlyMap<string, RebuildProgressView>;
    readonly fencedLocally: (volumeId: string, generation: number) => boolean;
    /** The replica server lets go of a volume whose replica left this node (ReplicaService.forget). */
    readonly forgetReplica: (volumeId: string) => Promise<void>;
    /** What /metrics reads of this node's Raft (raft-metrics.ts). */
    readonly raft: RaftMetricsSource;
    readonly support: SupportService;
    readonly snapshots: SnapshotServices;
    /** Free one snapshot copy here (the replica server closes its read handle first). */
    readonly deleteSnapshot: (volumeId: string, snapshotId: string) => Promise<void>;
    readonly logger: Logger;
  },
): Promise<{ apiAddress: HostPort; nbdAddress: HostPort; iscsiAddress: HostPort }> {
  const { config, nodeId, version, token, testApi } = options;
  const { commands, onApplied, pool, sessions, rebuildProgress, fencedLocally, forgetReplica, raft, snapshots, deleteSnapshot, logger } = modules;
  let nbd: NbdServer | null = null;
  let iscsi: IscsiServer | null = null;
  const disconnectClients = (name: string): void => {
    nbd?.disconnectExport(name);
    iscsi?.disconnectExport(name);
  };
  const volumeIo = new VolumeIoRecorder();
  const openSnapshot = snapshots.readers.open.bind(snapshots.readers);
  const exports = new VolumeExports({ nodeId }, { commands, pool, logger, sessions, fencedLocally, disconnectClients, volumeIo, openSnapshot });
  stack.push('volume stores', () => exports.closeAll());
  // Detach and delete may be committed on any node: react here to what was applied.
  const watcher = new AppliedStateWatcher({ nodeId }, { state: () => commands.state, subscribe: onApplied, forgetReplica, pool, releaseUnowned: () => exports.releaseUnowned(), deleteSnapshot, logger });
  watcher.start();
  stack.push('applied-state watcher', () => watcher.close());
  // node drain: only this node knows whether a volume attached here has clients (drain-attachments.ts).
  const drainAttachments = new DrainAttachments(
    { nodeId },
    {
      state: () => commands.state,
      detachIfIdle: (name) => exports.withVolumeReleased(name, {}, () => commands.propose({ type: 'volume.detach', name })),
      logger,
    },
  );
  drainAttachments.start();
  stack.push('drain attachments', () => drainAttachments.close());
  const readiness = new ReadinessTracker();
  readiness.expect('nbd', `not listening on ${formatHostPort(config.nbd)} yet`);
  readiness.expect('iscsi', `not listening on ${formatHostPort(config.iscsi)} yet`);
  readiness.expect('api', `not listening on ${formatHostPort(config.api)} yet`);
  const control = new LocalControlPlane({ nodeId, version }, { commands, pool, exports, readiness, logger, rebuildProgress, snapshots: snapshots.coordinator, forgetReplica });
  // Issue 8: send/receive streams and the leader's snapshot retention (daemon/snapshots/send-receive-services.ts).
  const sendReceive = createSendReceiveServices({ nodeId }, { commands, pool, exports, control, openSnapshot, logger });
  sendReceive.retention.start();
  stack.push('snapshot retention', () => sendReceive.retention.close());
  const metrics = createDaemonMetrics({ pool, clusterState: () => commands.state, connectionCount: () => exports.totalConnections(), rebuildProgress, volumeIo, raft });

  const nbdServer = await startNbdServer({ host: config.nbd.host, port: config.nbd.port, ...nbdTlsOf(config, options.tls) }, { exports, logger });
  nbd = nbdServer;
  stack.push('nbd', (signal) => nbdServer.close(signal));
  readiness.markReady('nbd');

  // One target per volume on every node (ARCHITECTURE "iSCSI"); SCSI state (reservations, unit attentions) is node-wide.
  const iscsiServer = await startIscsiServer(
    { host: config.iscsi.host, port: config.iscsi.port },
    {
      exports,
      registry: createScsiTargetRegistry({ logger, reservationStore: createClusterReservationStore({ nodeId }, { commands, logger }) }),
      // CHAP: per-volume secrets from the applied state, else the node's cluster-wide settings (docs/iscsi.md "CHAP").
      chap: createIscsiChapSecrets({ clusterChap: config.iscsiChap }, { state: () => commands.state }),
      logger,
    },
  );
  iscsi = iscsiServer;
  stack.push('iscsi', (signal) => iscsiServer.close(signal));
  readiness.markReady('iscsi');

  const https = options.tls.serverCredentials;
  const api = await buildApiApp({ token, version, logger, testApi, ...(https === null ? {} : { https: { key: https.key, cert: https.cert } }) }, { control, metrics, support: modules.support, tls: options.tls, sendReceive });
  stack.push('api', () => api.close());
  const apiAddress = await listenApi(api, config.api);
  readiness.markReady('api');
  // Stop reporting ready before anything else closes.
  stack.push('readiness', async () => readiness.markStopping('shutting down'));

  return { apiAddress, nbdAddress: nbdServer.address(), iscsiAddress: iscsiServer.address() };
}

/**
 * Every node's data plane (issue 4): the replica server behind the shared
 * peer port and the volume sessions of volumes attached here. It closes
 * after the NBD server and the exports (pushed later, closed earlier) and
 * before the pool it writes into.
 */
async function startNodeDataPlane(
  stack: ShutdownStack,
  options: { readonly nodeId: string; readonly uncleanRestart: boolean },
  modules: { readonly cluster: ClusterNode; readonly pool: Pool; readonly db: NodeDatabase; readonly peerListener: PeerListener; readonly tls: NodeTls; readonly logger: Logger },
): Promise<DataPlane> {
  const { cluster, peerListener } = modules;
  const dataPlane = await startDataPlane(
    { nodeId: options.nodeId, secret: cluster.secret, uncleanRestart: options.uncleanRestart },
    {
      pool: modules.pool,
      db: modules.db.sublevel<string, Buffer>('replica', { valueEncoding: 'buffer' }),
      cluster: proposerCluster({ commands: cluster.commands }),
      replacement: proposerReplacementPort({ commands: cluster.commands }),
      connectPeer: modules.tls.sockets.connect,
      logger: modules.logger,
    },
  );
  stack.push('data plane', () => dataPlane.close());
  peerListener.route('replica', isReplicaConnection, (socket) => dataPlane.acceptSocket(socket));
  return dataPlane;
}

/** Leader duty: liveness from heartbeats; every node: capacity reports (issue 4). */
function startClusterDuties(
  stack: ShutdownStack,
  options: { readonly nodeId: string; readonly tuning: ClusterTuning },
  modules: { readonly cluster: ClusterNode; readonly pool: Pool; readonly logger: Logger },
): void {
  const { cluster, pool, logger } = modules;
  const { commands, raft } = cluster;
  const liveness = new LivenessMonitor(
    { selfId: options.nodeId, downAfterMs: options.tuning.nodeDownAfterMs, checkEveryMs: Math.max(100, Math.floor(options.tuning.nodeDownAfterMs / 5)) },
    {
      isLeader: () => commands.isLeader,
      state: () => commands.state,
      lastContactMs: (id) => raft.lastContactMs(id),
      propose: (command) => commands.propose(command),
      logger,
    },
  );
  stack.push('liveness monitor', async () => liveness.stop());
  const capacity = new CapacityReporter(
    { nodeId: options.nodeId, everyMs: options.tuning.capacityReportMs, minChangeFraction: 0.01 },
    { stats: () => pool.stats(), state: () => commands.state, propose: (command) => commands.propose(command), logger },
  );
  stack.push('capacity reporter', async () => capacity.stop());
  void capacity.report();
}

/**
 * NBD over TLS (NBD_OPT_STARTTLS) whenever the cluster is TLS; `nbd-tls: optional` lets clients stay plain;
 * `nbd-tls-client-certs: required` (default) admits only clients with a certificate of the cluster CA,
 * which the secure context carries (docs/security.md "NBD").
 */
function nbdTlsOf(config: Config, tls: NodeTls): { tls?: { secureContext: SecureContext; required: boolean; verifyClients: boolean } } {
  const secureContext = tls.secureContext();
  if (secureContext === null) return {};
  return { tls: { secureContext, required: config.tls.nbd === 'required', verifyClients: config.tls.nbdClientCerts === 'required' } };
}

function addressesOf(config: Config): { api: string; peer: string; nbd: string; iscsi: string } {
  return {
    api: formatHostPort(config.api),
    peer: formatHostPort(config.peer),
    nbd: formatHostPort(config.nbd),
    iscsi: formatHostPort(config.iscsi),
  };
}

async function openNodePool(config: Config, dataDir: string, db: NodeDatabase, logger: Logger): Promise<Pool> {
  const disks: DiskSpec[] = config.disks.map((disk) => ({ ...disk, path: resolve(disk.path) }));
  // New file disks inside the data dir (the default one) get their folder made;
  // a folder elsewhere is the operator's to create.
  for (const disk of disks) {
    const inside = relative(dataDir, disk.path);
    if (disk.sizeBytes !== undefined && !inside.startsWith('..') && !isAbsolute(inside)) {
      await mkdir(dirname(disk.path), { recursive: true, mode: 0o750 });
    }
  }
  const poolDb = db.sublevel<string, Buffer>('pool', { valueEncoding: 'buffer' });
  return openPool(config.extentSizeBytes === null ? { disks } : { disks, extentSizeBytes: config.extentSizeBytes }, { db: poolDb, logger });
}

async function listenApi(api: FastifyInstance, address: HostPort): Promise<HostPort> {
  try {
    await api.listen({ host: address.host, port: address.port });
  } catch (err) {
    // Fastify repeats the socket error in its message; the errno code says it once.
    const error = toError(err);
    const reason = 'code' in error && typeof error.code === 'string' ? error.code : error.message;
    throw new PlinthError('IO_ERROR', `API server cannot listen on ${formatHostPort(address)}: ${reason}`, { ...address }, { cause: err });
  }
  const bound = api.server.address();
  return typeof bound === 'object' && bound !== null ? { host: address.host, port: bound.port } : address;
}

/** What /metrics reads of Raft: status and leader changes from the node, proposal latency from the command log. */
function raftMetricsSource(cluster: ClusterNode): RaftMetricsSource {
  return {
    status: () => cluster.raft.status(),
    leaderChanges: () => cluster.raft.leaderChanges,
    onProposalApplied: (listener) => cluster.commands.onProposalApplied(listener),
  };
}
