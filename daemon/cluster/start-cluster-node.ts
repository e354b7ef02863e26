import { randomInt } from 'node:crypto';
import type { Logger } from 'pino';
import { isPlinthError, PlinthError, type PlinthErrorCode, toError } from '../../common/plinth-error.js';
import { RaftNode } from '../../consensus/node/raft-node.js';
import { DEFAULT_NODE_OPTIONS } from '../../consensus/node/raft-node-options.js';
import { raftMessageCodec } from '../../consensus/proto/raft-message-codec.js';
import { SeededPrng } from '../../common/prng.js';
import type { Message } from '../../consensus/raft/types.js';
import type { RaftDb } from '../../consensus/storage/raft-db.js';
import { DEFAULT_TRANSPORT_LIMITS, TcpTransport } from '../../consensus/transport/tcp-transport.js';
import { formatHostPort, type HostPort } from '../config/config-types.js';
import { findNode, type NodeAddresses, type NodeLabels } from '../state/cluster-state.js';
import { createClusterSecret, readClusterSecret, saveJoinCredentials, wasJoined } from './cluster-credentials.js';
import { ClusterStateMachine, type CommandOutcome } from './cluster-state-machine.js';
import { NodeTls } from '../tls/node-tls.js';
import { joinCluster, type JoinCredentials, type JoinerTls } from './join-protocol.js';
import { magicAt, RPC_MAGIC, type PeerListener } from './peer-listener.js';
import { serveRpcConnection } from './peer-rpc.js';
import { RaftCommandLog } from './raft-command-log.js';

/** Codes a member answers a join with when it refuses it; anything else is a transport failure. */
const MEMBER_REFUSALS: ReadonlySet<PlinthErrorCode> = new Set<PlinthErrorCode>(['INVALID_ARGUMENT', 'UNAUTHORIZED', 'CONFIG_INVALID']);

export interface ClusterNodeOptions {
  readonly nodeId: string;
  readonly dataDir: string;
  readonly addresses: NodeAddresses;
  readonly labels: NodeLabels;
  /** The advertised peer address (what the listener bound). */
  readonly peerAddress: HostPort;
  /** A member's peer address; used only when this data dir has never been part of a cluster. */
  readonly join: HostPort | null;
  /** Raft tick; the election timeout is 10-20 ticks. */
  readonly tickMs: number;
  /** Bound on start-up waits (leader election, catching up, joining). */
  readonly startTimeoutMs: number;
}

export interface ClusterNodeModules {
  readonly raftDb: RaftDb;
  readonly peerListener: PeerListener;
  /** Plain or mutual-TLS peer connections (daemon/tls/node-tls.ts); a token joiner adopts its certificate here. Default: plain. */
  readonly tls?: NodeTls;
  readonly logger: Logger;
  readonly clock?: () => Date;
}

export interface ClusterNode {
  readonly commands: RaftCommandLog;
  readonly raft: RaftNode<CommandOutcome>;
  readonly stateMachine: ClusterStateMachine;
  readonly secret: Buffer;
  /** How this start began: a new cluster, a join, or a restart of a member. */
  readonly mode: 'bootstrap' | 'join' | 'restart';
  stop(): Promise<void>;
}

/**
 * Every node runs Raft, also a single one (ARCHITECTURE "cluster"): an empty
 * data dir without --join bootstraps a one-member cluster; with --join it
 * joins through a member's peer port; a data dir that already holds a cluster
 * secret restarts as a member and ignores --join.
 */
export async function startClusterNode(options: ClusterNodeOptions, given: ClusterNodeModules): Promise<ClusterNode> {
  const modules: ClusterNodeModules & { readonly tls: NodeTls } = { ...given, tls: given.tls ?? NodeTls.plain() };
  const { logger } = modules;
  const existing = await readClusterSecret(options.dataDir);
  if (existing !== null) {
    if (options.join !== null) logger.info({ join: formatHostPort(options.join) }, 'data dir already belongs to a cluster; --join ignored');
    const bootstrap = !(await wasJoined(options.dataDir));
    const node = await startRaft(options, modules, existing, bootstrap ? { bootstrapVoters: [options.nodeId] } : {}, 'restart');
    await settle(node, options, modules, false);
    return node;
  }
  if (options.join === null) {
    const secret = await createClusterSecret(options.dataDir);
    const node = await startRaft(options, modules, secret, { bootstrapVoters: [options.nodeId] }, 'bootstrap');
    await settle(node, options, modules, true);
    return node;
  }
  let started: ClusterNode | null = null;
  const onCredentials = async (credentials: JoinCredentials): Promise<void> => {
    // TLS files first: a data dir with a cluster secret but no tls/ca.crt would restart as a plain member.
    if (credentials.tls !== null) await modules.tls.adopt(credentials.tls);
    await saveJoinCredentials(options.dataDir, credentials);
    started = await startRaft(options, modules, credentials.secret, { peers: credentials.peers }, 'join');
  };
  logger.info({ join: formatHostPort(options.join) }, 'joining the cluster');
  try {
    await joinCluster(options.join, { nodeId: options.nodeId, addresses: options.addresses, labels: options.labels }, onCredentials, joinerTls(modules.tls));
  } catch (err) {
    await (started as ClusterNode | null)?.stop();
    const through = formatHostPort(options.join);
    // The member answered and said no (a duplicate node id, a wrong token): its reason is the whole story.
    if (isPlinthError(err) && MEMBER_REFUSALS.has(err.code)) {
      throw new PlinthError(err.code, `the cluster at ${through} refused the join: ${err.message}`, { join: through });
    }
    // A plain joiner at a TLS member sees only a closed connection; a token joiner at a plain one a TLS error.
    const hint = modules.tls.enabled ? ' (is the member part of a TLS cluster, and the join token its?)' : ' (if the cluster uses TLS, pass --join-token)';
    throw new PlinthError('IO_ERROR', `cannot join the cluster through ${through}: ${toError(err).message}${hint}`, {
      join: through,
    }, { cause: err });
  }
  const node = started as ClusterNode | null;
  if (node === null) throw new PlinthError('INTERNAL', 'join finished without starting raft');
  await settle(node, options, modules, false);
  return node;
}

async function startRaft(
  options: ClusterNodeOptions,
  modules: ClusterNodeModules & { readonly tls: NodeTls },
  secret: Buffer,
  membership: { bootstrapVoters?: readonly string[]; peers?: ReadonlyMap<string, HostPort> },
  mode: ClusterNode['mode'],
): Promise<ClusterNode> {
  const { logger, peerListener } = modules;
  const prng = new SeededPrng(randomInt(2 ** 31));
  const transport = new TcpTransport<Message>(
    { ...DEFAULT_TRANSPORT_LIMITS, nodeId: options.nodeId, listen: options.peerAddress, secret },
    { logger, codec: raftMessageCodec, random: () => prng.nextFloat(), connect: modules.tls.sockets.connect },
  );
  const stateMachine = new ClusterStateMachine({ logger });
  const peers = new Map([...(membership.peers ?? new Map<string, HostPort>())].filter(([id]) => id !== options.nodeId));
  const raft = await RaftNode.start<CommandOutcome>(
    {
      ...DEFAULT_NODE_OPTIONS,
      nodeId: options.nodeId,
      ...(membership.bootstrapVoters === undefined ? {} : { bootstrapVoters: membership.bootstrapVoters }),
      peers,
      selfAddress: options.peerAddress,
      tickMs: options.tickMs,
    },
    { logger: logger.child({ component: 'raft' }), db: modules.raftDb, transport, stateMachine, prng },
  );
  const commands = new RaftCommandLog(
    { nodeId: options.nodeId, forwardTimeoutMs: 5000, maxForwards: 256 },
    { raft, stateMachine, secret, logger, dial: modules.tls.sockets.connect },
  );
  peerListener.fallback((socket) => transport.acceptSocket(socket));
  peerListener.route('rpc', magicAt(0, RPC_MAGIC), (socket) =>
    serveRpcConnection(socket, () => secret, (request) => commands.handleForwarded(request), logger),
  );
  return { commands, raft, stateMachine, secret, mode, stop: () => raft.stop() };
}

/** How this node joins: plain; with a join token (TLS without a certificate yet); or with operator certificates. */
function joinerTls(tls: NodeTls): JoinerTls | null {
  if (!tls.enabled) return null;
  const publicKeyPem = tls.joinPublicKeyPem;
  const joinToken = tls.joinToken;
  if (publicKeyPem !== null && joinToken !== null) return { dial: tls.sockets.connectForJoin, token: { joinToken, publicKeyPem } };
  return { dial: tls.sockets.connect, token: null };
}

/**
 * Wait until a leader is known and this node has caught up; then make sure
 * the committed state names the cluster (bootstrap) and this node's current
 * addresses. Bounded: a node that cannot reach a quorum still starts, and
 * its API answers NOT_LEADER until the cluster is whole again.
 */
async function settle(node: ClusterNode, options: ClusterNodeOptions, modules: ClusterNodeModules, bootstrap: boolean): Promise<void> {
  const { logger } = modules;
  const deadlineMs = Date.now() + options.startTimeoutMs;
  try {
    await waitFor(() => node.raft.leaderId !== null, deadlineMs, 'a raft leader');
    await node.commands.barrier();
    if (bootstrap && node.commands.state.clusterId === null) {
      const clusterId = `c-${randomInt(2 ** 47).toString(16)}${randomInt(2 ** 47).toString(16)}`;
      await node.commands.propose({ type: 'cluster.init', clusterId });
      logger.info({ clusterId }, 'bootstrapped a one-member cluster');
    }
    const known = findNode(node.commands.state, options.nodeId);
    const same =
      known !== undefined &&
      JSON.stringify(known.addresses) === JSON.stringify(options.addresses) &&
      JSON.stringify(known.labels) === JSON.stringify(options.labels);
    if (!same && node.raft.status().confState.voters.includes(options.nodeId)) {
      const joinedAt = (modules.clock ?? (() => new Date()))().toISOString();
      await node.commands.propose({ type: 'node.join', nodeId: options.nodeId, addresses: options.addresses, labels: options.labels, joinedAt });
      logger.info({ addresses: options.addresses, labels: options.labels }, known === undefined ? 'node registered' : 'node addresses updated');
    }
  } catch (err) {
    if (bootstrap) throw err;
    logger.warn({ err: toError(err) }, 'cluster not reachable at start-up; serving anyway, control-plane calls fail until it is');
  }
}

async function waitFor(condition: () => boolean, deadlineMs: number, what: string): Promise<void> {
  while (!condition()) {
    if (Date.now() >= deadlineMs) throw new PlinthError('TIMEOUT', `timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

