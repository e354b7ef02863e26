import { mkdir } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { PlinthError, toError } from '../common/plinth-error.js';
import { openPool } from '../blockdev/pool/open-pool.js';
import type { DiskSpec, Pool } from '../blockdev/pool/pool-types.js';
import { startNbdServer, type NbdServer } from '../blockdev/nbd/nbd-server.js';
import { buildApiApp } from '../api/build-api-app.js';
import { formatHostPort, type Config, type HostPort } from './config/config-types.js';
import { LocalControlPlane } from './control/local-control-plane.js';
import { ReadinessTracker } from './control/readiness-tracker.js';
import { VolumeExports } from './control/volume-exports.js';
import { ensureApiToken } from './lifecycle/api-token.js';
import { bootstrapCluster } from './lifecycle/bootstrap-cluster.js';
import { loadNodeId } from './lifecycle/node-identity.js';
import { openNodeDatabase, type NodeDatabase } from './lifecycle/open-database.js';
import { ShutdownStack } from './lifecycle/shutdown-stack.js';
import { createDaemonMetrics } from './metrics/daemon-metrics.js';
import { LocalCommandLog } from './state/local-command-log.js';

export interface DaemonOptions {
  readonly config: Config;
  readonly version: string;
}

export interface DaemonModules {
  readonly logger: Logger;
  readonly hostname?: () => string;
}

export interface RunningDaemon {
  readonly nodeId: string;
  readonly dataDir: string;
  readonly apiAddress: HostPort;
  readonly nbdAddress: HostPort;
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
  refuseUnsupported(config, logger);
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
  const nodeId = await loadNodeId({
    configured: config.nodeId,
    configuredSource: config.sources['node-id'] ?? '--node-id',
    hostname: (modules.hostname ?? osHostname)(),
    dataDir,
  });
  // Every line from here on says which node wrote it (several share a journal in e2e tests).
  const logger = modules.logger.child({ nodeId });
  const token = await ensureApiToken(dataDir, { logger });

  const commands = await LocalCommandLog.open({}, { storage: db.sublevel<string, unknown>('state', { valueEncoding: 'json' }), logger });
  stack.push('command log', () => commands.close());
  await bootstrapCluster({ nodeId, addresses: addressesOf(config) }, { commands, logger });

  const pool = await openNodePool(config, dataDir, db, logger);
  stack.push('pool', () => pool.close());

  let nbd: NbdServer | null = null;
  const exports = new VolumeExports(
    { nodeId },
    { commands, pool, logger, disconnectClients: (name) => void nbd?.disconnectExport(name) },
  );
  stack.push('volume stores', () => exports.closeAll());
  const readiness = new ReadinessTracker();
  readiness.expect('nbd', `not listening on ${formatHostPort(config.nbd)} yet`);
  readiness.expect('api', `not listening on ${formatHostPort(config.api)} yet`);
  const control = new LocalControlPlane({ nodeId, version }, { commands, pool, exports, readiness, logger });
  const metrics = createDaemonMetrics({ pool, clusterState: () => commands.state, connectionCount: () => exports.totalConnections() });

  const nbdServer = await startNbdServer({ host: config.nbd.host, port: config.nbd.port }, { exports, logger });
  nbd = nbdServer;
  stack.push('nbd', (signal) => nbdServer.close(signal));
  readiness.markReady('nbd');

  const api = await buildApiApp({ token, version, logger }, { control, metrics });
  stack.push('api', () => api.close());
  const apiAddress = await listenApi(api, config.api);
  readiness.markReady('api');
  // Stop reporting ready before anything else closes.
  stack.push('readiness', async () => readiness.markStopping('shutting down'));

  const nbdAddress = nbdServer.address();
  logger.info({ dataDir, api: formatHostPort(apiAddress), nbd: formatHostPort(nbdAddress), version }, 'plinthd ready');
  return {
    nodeId,
    dataDir,
    apiAddress,
    nbdAddress,
    close: (signal = new AbortController().signal) => stack.closeAll(signal),
  };
}

/** Flags accepted for the contract but served by later issues. */
function refuseUnsupported(config: Config, logger: Logger): void {
  if (config.join !== null) {
    throw new PlinthError(
      'NOT_SUPPORTED',
      `${config.sources.join ?? '--join'}: joining a cluster is not supported yet; this release runs single-node clusters (start without --join)`,
      { join: formatHostPort(config.join) },
    );
  }
  logger.info({ peer: formatHostPort(config.peer) }, 'peer port configured; not served yet (replication arrives with the cluster issue)');
  logger.info({ iscsi: formatHostPort(config.iscsi) }, 'iSCSI port configured; not served yet (iSCSI arrives with its own issue)');
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
