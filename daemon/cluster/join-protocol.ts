import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { PlinthError, toError } from '../../common/plinth-error.js';
import { addVoter } from '../../consensus/node/membership.js';
import type { RaftNode } from '../../consensus/node/raft-node.js';
import { isValidNodeId } from '../config/setting-parsers.js';
import type { HostPort } from '../config/config-types.js';
import type { NodeAddresses, NodeLabels } from '../state/cluster-state.js';
import type { CommandOutcome } from './cluster-state-machine.js';
import { joinProof, sessionBinding, verifyJoinProof } from '../tls/join-token.js';
import type { JoinTlsGrant, NodeTls } from '../tls/node-tls.js';
import { dialPeer, errorFromJson, errorToJson, JsonLineSocket, type DialSocket } from './json-line-socket.js';
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
 * In a plain cluster the exchange is unauthenticated (loopback default). In
 * a TLS cluster (docs/security.md "Joining") the joiner opens TLS without a
 * certificate and proves the join token bound to the session (join-token.ts);
 * the member answers with its own proof, which the joiner checks before it
 * trusts anything, plus a certificate signed for the joiner's public key, the
 * CA (certificate and key) and the join token. A follower checks the proof
 * itself and relays over its own mutual-TLS link with `relayed: true`, which
 * the leader honours only on an authenticated connection. A joiner with
 * operator certificates connects with them and needs no token.
 */
export interface JoinRequest {
  readonly nodeId: string;
  readonly addresses: NodeAddresses;
  readonly labels: NodeLabels;
  /** A token joiner's public key (PEM), for the member to sign. */
  readonly publicKeyPem?: string;
}

export interface JoinCredentials {
  readonly clusterId: string;
  readonly secret: Buffer;
  readonly apiToken: string;
  /** Peer addresses of the current members, so the new node can answer them at once. */
  readonly peers: ReadonlyMap<string, HostPort>;
  /** What a token joiner receives in a TLS cluster; null otherwise. */
  readonly tls: JoinTlsGrant | null;
}

export interface JoinServerModules {
  readonly raft: RaftNode<CommandOutcome>;
  readonly commands: RaftCommandLog;
  readonly secret: Buffer;
  readonly apiToken: string;
  /** This node's TLS state: whether joins need a token, and the CA that signs joiners. */
  readonly tls: NodeTls;
  readonly logger: Logger;
  readonly clock?: () => Date;
}

const CREDENTIALS_TIMEOUT_MS = 15_000;
const JOINED_TIMEOUT_MS = 60_000;

export function serveJoinConnection(socket: Socket, modules: JoinServerModules): void {
  const lines = new JsonLineSocket(socket, { skipBytes: JOIN_MAGIC.length });
  void (async () => {
    try {
      const raw = await lines.receive(10_000);
      const request = parseJoinRequest(raw);
      const memberProof = authorizeJoin(socket, raw, modules);
      if (modules.commands.isLeader) await admitAsLeader(request, lines, modules, memberProof);
      else await relayToLeader(request, lines, modules, memberProof);
    } catch (err) {
      modules.logger.warn({ err: toError(err) }, 'join: request failed');
      lines.send({ ok: false, error: errorToJson(err) });
    } finally {
      lines.close();
    }
  })();
}

/**
 * In a TLS cluster: a connection with a cluster certificate (a relaying
 * member, or a joiner with operator certificates) is admitted as it is; any
 * other must carry the joiner's proof of the join token. Returns this
 * member's proof for the joiner, or null when none is due.
 */
function authorizeJoin(socket: Socket, raw: unknown, modules: JoinServerModules): string | null {
  if (!modules.tls.enabled) return null;
  if (modules.tls.sockets.authorizationFailure(socket) === null) return null;
  if (!(socket instanceof TLSSocket)) throw new PlinthError('UNAUTHORIZED', 'join refused: this cluster requires TLS');
  const token = modules.tls.joinToken;
  if (token === null) throw new PlinthError('UNAUTHORIZED', 'join refused: this member has no join token (operator certificates: give the joiner its own)');
  const record = typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>) : {};
  if (record['relayed'] === true) throw new PlinthError('UNAUTHORIZED', 'join refused: a relayed join must come over an authenticated member link');
  const binding = sessionBinding(socket);
  verifyJoinProof(token, 'joiner', binding, record['proof']);
  return joinProof(token, 'member', binding);
}

async function admitAsLeader(request: JoinRequest, lines: JsonLineSocket, modules: JoinServerModules, memberProof: string | null): Promise<void> {
  const { raft, commands, logger } = modules;
  const conf = raft.status().confState;
  if (conf.voters.includes(request.nodeId)) {
    throw new PlinthError('INVALID_ARGUMENT', `node ${request.nodeId} is already a member: give this node its own --node-id, or remove the old member first (plinth node rm ${request.nodeId})`, {
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
  const tls = modules.tls.enabled && request.publicKeyPem !== undefined
    ? await modules.tls.signJoiner({ nodeId: request.nodeId, publicKeyPem: request.publicKeyPem, hosts: listenHostsOf(request.addresses) })
    : null;
  lines.send({ ok: true, stage: 'credentials', clusterId, secret: modules.secret.toString('hex'), apiToken: modules.apiToken, peers, tls, memberProof });
  logger.info({ joiner: request.nodeId, peer: request.addresses.peer }, 'join: adding node as a voter');
  await addVoter(raft, request.nodeId, parseHostPort(request.addresses.peer), { timeoutMs: JOINED_TIMEOUT_MS - 5000, pollMs: 50 });
  const joinedAt = (modules.clock ?? (() => new Date()))().toISOString();
  await commands.propose({ type: 'node.join', nodeId: request.nodeId, addresses: request.addresses, labels: request.labels, joinedAt });
  lines.send({ ok: true, stage: 'joined' });
  logger.info({ joiner: request.nodeId }, 'join: node is a voter');
}

/** A follower passes the exchange through to the leader's peer port, line for line. */
async function relayToLeader(request: JoinRequest, lines: JsonLineSocket, modules: JoinServerModules, memberProof: string | null): Promise<void> {
  const leaderId = modules.raft.leaderId;
  const address = leaderId === null ? undefined : modules.raft.addressOf(leaderId);
  if (address === undefined) throw new PlinthError('NOT_LEADER', 'no leader is known here; retry the join', { leaderId });
  const upstream = new JsonLineSocket(await dialPeer(address, 5000, modules.tls.sockets.connect));
  try {
    upstream.send({ ...request, relayed: true }, JOIN_MAGIC);
    const credentials = await upstream.receive(CREDENTIALS_TIMEOUT_MS);
    // The joiner checks the proof of the member it talks to: this one.
    lines.send(memberProof === null || typeof credentials !== 'object' || credentials === null ? credentials : { ...credentials, memberProof });
    lines.send(await upstream.receive(JOINED_TIMEOUT_MS));
  } finally {
    upstream.close();
  }
}

/** How a joiner reaches the member in a TLS cluster (start-cluster-node.ts joinerTls). */
export interface JoinerTls {
  /** connectForJoin for a token join, the mutual-TLS connect with operator certificates, plain otherwise. */
  readonly dial: DialSocket;
  /** Present for a token join: the token and the key the member signs. */
  readonly token: { readonly joinToken: string; readonly publicKeyPem: string } | null;
}

/**
 * The joiner's side: ask, hand the credentials to `onCredentials` (persist,
 * start Raft), then wait until the leader reports the node a voter.
 */
export async function joinCluster(
  member: HostPort,
  request: JoinRequest,
  onCredentials: (credentials: JoinCredentials) => Promise<void>,
  tls: JoinerTls | null = null,
): Promise<JoinCredentials> {
  const socket = await dialPeer(member, 5000, tls?.dial);
  const lines = new JsonLineSocket(socket);
  try {
    const token = tls?.token ?? null;
    const binding = token === null ? null : sessionBinding(asTlsSocket(socket));
    lines.send(
      token === null || binding === null ? request : { ...request, publicKeyPem: token.publicKeyPem, proof: joinProof(token.joinToken, 'joiner', binding) },
      JOIN_MAGIC,
    );
    const record = expectOk(await lines.receive(CREDENTIALS_TIMEOUT_MS));
    // Trust nothing the member sent before it proved the token over this very session.
    if (token !== null && binding !== null) verifyJoinProof(token.joinToken, 'member', binding, record['memberProof']);
    const credentials = parseCredentials(record);
    if (token !== null && credentials.tls === null) {
      throw new PlinthError('PROTOCOL_ERROR', 'join: the member sent no certificate for this node', { reason: 'tls-grant' });
    }
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
  return { clusterId, secret: Buffer.from(secret, 'hex'), apiToken, peers: peerMap, tls: parseGrant(record['tls']) };
}

function parseGrant(value: unknown): JoinTlsGrant | null {
  if (value === null || value === undefined) return null;
  const record = typeof value === 'object' ? (value as Record<string, unknown>) : {};
  const { caCertPem, caKeyPem, certPem, joinToken } = record;
  if (typeof caCertPem !== 'string' || typeof caKeyPem !== 'string' || typeof certPem !== 'string' || typeof joinToken !== 'string') {
    throw new PlinthError('PROTOCOL_ERROR', 'join: the member answered a malformed TLS grant', { reason: 'tls-grant' });
  }
  return { caCertPem, caKeyPem, certPem, joinToken };
}

function asTlsSocket(socket: Socket): TLSSocket {
  if (!(socket instanceof TLSSocket)) throw new PlinthError('INTERNAL', 'a token join needs a TLS connection');
  return socket;
}

/** The hosts a joiner's certificate names: those of its api, peer and nbd addresses. */
function listenHostsOf(addresses: NodeAddresses): string[] {
  return [addresses.api, addresses.peer, addresses.nbd].map((text) => parseHostPort(text).host);
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
  const parsed = { nodeId, addresses: { api: String(a['api']), peer: String(a['peer']), nbd: String(a['nbd']), iscsi: String(a['iscsi']) }, labels: cleanLabels };
  const publicKeyPem = record['publicKeyPem'];
  if (publicKeyPem === undefined) return parsed;
  if (typeof publicKeyPem !== 'string' || publicKeyPem.length > 4096 || !publicKeyPem.includes('BEGIN PUBLIC KEY')) {
    throw new PlinthError('INVALID_ARGUMENT', `join: node ${nodeId} sent a malformed public key`);
  }
  return { ...parsed, publicKeyPem };
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
