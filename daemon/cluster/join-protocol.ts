import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { PlinthError, toError } from '../../common/plinth-error.js';
import { addVoter } from '../../consensus/node/membership.js';
import type { RaftNode } from '../../consensus/node/raft-node.js';
import { isValidNodeId } from '../config/setting-parsers.js';
import type { HostPort } from '../config/config-types.js';
import type { NodeAddresses, NodeLabels } from '../state/cluster-state.js';
import type { CommandOutcome } from './cluster-state-machine.js';
import { dialPeer, errorFromJson, errorToJson, JsonLineSocket } from './json-line-socket.js';
import { JOIN_MAGIC } from './peer-listener.js';
import type { RaftCommandLog } from './raft-command-log.js';

/**
 * `--join H:P` (ARCHITECTURE "cluster"): the joiner connects to any member's
 * peer port and sends one JOIN line; the member relays it to the leader. The
 * leader answers twice on the same connection:
 *
 *   1. {stage: 'credentials', clusterId, secret, apiToken, peers}: the joiner
 *      persists them (0600) and starts its Raft node, empty, waiting;
 *   2. {stage: 'joined'} once addVoter (learner → caught up → voter, Raft
 *      thesis §4.2.1) and the node.join command have committed.
 *
 * Unauthenticated for now, and only on the peer port: TLS and join tokens
 * come with the operations issue (docs/operations.md).
 */
export interface JoinRequest {
  readonly nodeId: string;
  readonly addresses: NodeAddresses;
  readonly labels: NodeLabels;
}

export interface JoinCredentials {
  readonly clusterId: string;
  readonly secret: Buffer;
  readonly apiToken: string;
  /** Peer addresses of the current members, so the new node can answer them at once. */
  readonly peers: ReadonlyMap<string, HostPort>;
}

export interface JoinServerModules {
  readonly raft: RaftNode<CommandOutcome>;
  readonly commands: RaftCommandLog;
  readonly secret: Buffer;
  readonly apiToken: string;
  readonly logger: Logger;
  readonly clock?: () => Date;
}

const CREDENTIALS_TIMEOUT_MS = 15_000;
const JOINED_TIMEOUT_MS = 60_000;

export function serveJoinConnection(socket: Socket, modules: JoinServerModules): void {
  const lines = new JsonLineSocket(socket, { skipBytes: JOIN_MAGIC.length });
  void (async () => {
    try {
      const request = parseJoinRequest(await lines.receive(10_000));
      if (modules.commands.isLeader) await admitAsLeader(request, lines, modules);
      else await relayToLeader(request, lines, modules);
    } catch (err) {
      modules.logger.warn({ err: toError(err) }, 'join: request failed');
      lines.send({ ok: false, error: errorToJson(err) });
    } finally {
      lines.close();
    }
  })();
}

async function admitAsLeader(request: JoinRequest, lines: JsonLineSocket, modules: JoinServerModules): Promise<void> {
  const { raft, commands, logger } = modules;
  const conf = raft.status().confState;
  if (conf.voters.includes(request.nodeId)) {
    throw new PlinthError('INVALID_ARGUMENT', `node ${request.nodeId} is already a member; remove it first (plinth node rm ${request.nodeId})`, {
      nodeId: request.nodeId,
    });
  }
  const clusterId = commands.state.clusterId;
  if (clusterId === null) throw new PlinthError('NOT_LEADER', 'the cluster is still bootstrapping; retry', { retry: true });
  const peers: Record<string, HostPort> = {};
  for (const id of conf.voters) {
    const address = raft.addressOf(id);
    if (address !== undefined) peers[id] = address;
  }
  lines.send({ ok: true, stage: 'credentials', clusterId, secret: modules.secret.toString('hex'), apiToken: modules.apiToken, peers });
  logger.info({ joiner: request.nodeId, peer: request.addresses.peer }, 'join: adding node as a voter');
  await addVoter(raft, request.nodeId, parseHostPort(request.addresses.peer), { timeoutMs: JOINED_TIMEOUT_MS - 5000, pollMs: 50 });
  const joinedAt = (modules.clock ?? (() => new Date()))().toISOString();
  await commands.propose({ type: 'node.join', nodeId: request.nodeId, addresses: request.addresses, labels: request.labels, joinedAt });
  lines.send({ ok: true, stage: 'joined' });
  logger.info({ joiner: request.nodeId }, 'join: node is a voter');
}

/** A follower passes the exchange through to the leader's peer port, line for line. */
async function relayToLeader(request: JoinRequest, lines: JsonLineSocket, modules: JoinServerModules): Promise<void> {
  const leaderId = modules.raft.leaderId;
  const address = leaderId === null ? undefined : modules.raft.addressOf(leaderId);
  if (address === undefined) throw new PlinthError('NOT_LEADER', 'no leader is known here; retry the join', { leaderId });
  const upstream = new JsonLineSocket(await dialPeer(address, 5000));
  try {
    upstream.send(request, JOIN_MAGIC);
    lines.send(await upstream.receive(CREDENTIALS_TIMEOUT_MS));
    lines.send(await upstream.receive(JOINED_TIMEOUT_MS));
  } finally {
    upstream.close();
  }
}

/**
 * The joiner's side: ask, hand the credentials to `onCredentials` (persist,
 * start Raft), then wait until the leader reports the node a voter.
 */
export async function joinCluster(
  member: HostPort,
  request: JoinRequest,
  onCredentials: (credentials: JoinCredentials) => Promise<void>,
): Promise<JoinCredentials> {
  const lines = new JsonLineSocket(await dialPeer(member, 5000));
  try {
    lines.send(request, JOIN_MAGIC);
    const credentials = parseCredentials(expectOk(await lines.receive(CREDENTIALS_TIMEOUT_MS)));
    await onCredentials(credentials);
    expectOk(await lines.receive(JOINED_TIMEOUT_MS));
    return credentials;
  } finally {
    lines.close();
  }
}

function expectOk(reply: unknown): Record<string, unknown> {
  const record = typeof reply === 'object' && reply !== null ? (reply as Record<string, unknown>) : {};
  if (record['ok'] === true) return record;
  throw errorFromJson(record['error']);
}

function parseCredentials(record: Record<string, unknown>): JoinCredentials {
  const { clusterId, secret, apiToken, peers } = record;
  if (typeof clusterId !== 'string' || typeof secret !== 'string' || !/^[0-9a-f]{64}$/.test(secret) || typeof apiToken !== 'string') {
    throw new PlinthError('PROTOCOL_ERROR', 'join: the member answered malformed credentials', { reason: 'credentials' });
  }
  const peerMap = new Map<string, HostPort>();
  if (typeof peers === 'object' && peers !== null) {
    for (const [id, value] of Object.entries(peers as Record<string, unknown>)) {
      const address = value as Partial<HostPort> | null;
      if (typeof address?.host === 'string' && typeof address.port === 'number') peerMap.set(id, { host: address.host, port: address.port });
    }
  }
  return { clusterId, secret: Buffer.from(secret, 'hex'), apiToken, peers: peerMap };
}

function parseJoinRequest(value: unknown): JoinRequest {
  const record = typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
  const { nodeId, addresses, labels } = record;
  if (typeof nodeId !== 'string' || !isValidNodeId(nodeId)) throw new PlinthError('INVALID_ARGUMENT', `join: invalid node id ${JSON.stringify(nodeId)}`);
  const a = (typeof addresses === 'object' && addresses !== null ? addresses : {}) as Record<string, unknown>;
  const roles = ['api', 'peer', 'nbd', 'iscsi'] as const;
  for (const role of roles) {
    if (typeof a[role] !== 'string') throw new PlinthError('INVALID_ARGUMENT', `join: node ${nodeId} sent no ${role} address`);
  }
  parseHostPort(String(a['peer']));
  const cleanLabels = (typeof labels === 'object' && labels !== null ? labels : {}) as NodeLabels;
  return { nodeId, addresses: { api: String(a['api']), peer: String(a['peer']), nbd: String(a['nbd']), iscsi: String(a['iscsi']) }, labels: cleanLabels };
}

export function parseHostPort(text: string): HostPort {
  const colon = text.lastIndexOf(':');
  const port = Number(text.slice(colon + 1));
  const host = text.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  if (colon <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) {
    throw new PlinthError('INVALID_ARGUMENT', `not a host:port address: ${JSON.stringify(text)}`);
  }
  return { host, port };
}
