import type { Socket } from 'node:net';
import { PlinthError } from '../../common/plinth-error.js';
import type { Logger } from 'pino';
import type { Pool } from '../../blockdev/pool/pool-types.js';
import type { SnapshotOps } from '../../blockdev/replica/snapshot-ops.js';
import type { CommandProposer } from '../control/command-proposer.js';
import { findNode } from '../state/cluster-state.js';
import { parsePeerAddress } from '../volume/proposer-cluster.js';
import type { VolumeSessions } from '../volume/volume-sessions.js';
import { SnapshotCoordinator, type PausableVolume, type SnapshotCoordinatorModules } from './snapshot-coordinator.js';
import { PauseHolds } from './pause-holds.js';
import type { RpcRequest } from '../cluster/peer-rpc.js';
import { SnapshotReaders } from './snapshot-readers.js';
import { SnapshotReplicaClient } from './snapshot-replica-client.js';
import type { SnapshotRecord } from '../state/snapshot-commands.js';

/**
 * Issue 8: the snapshot pieces of one node, built for the composition root
 * (daemon/main.ts): the replica client (snapshot ops over the peer port),
 * the coordinator (what the control plane calls) and the readers behind
 * `volume@snapshot` exports.
 */

export interface SnapshotServicesOptions {
  readonly nodeId: string;
  readonly secret: Buffer;
  readonly pauseTimeoutMs?: number;
}

export interface SnapshotServicesModules {
  readonly commands: CommandProposer;
  readonly pool: Pool;
  /** This node's replica server's snapshot ops (local reads, deletes that close read handles). */
  readonly ops: SnapshotOps;
  readonly sessions: VolumeSessions;
  readonly connectPeer?: (host: string, port: number) => Socket;
  /**
   * Peer RPC to one member (RaftCommandLog.callMember): forwards a snapshot to
   * the owner of an attached volume, and pauses owners for group snapshots.
   * Absent: those are refused, naming the owner.
   */
  readonly callMember?: (nodeId: string, request: RpcRequest, options: { readonly timeoutMs: number }) => Promise<unknown>;
  readonly logger: Logger;
}

export interface SnapshotServices {
  readonly coordinator: SnapshotCoordinator;
  readonly readers: SnapshotReaders;
  /** Serve the member ops other nodes call here (`snapshot-create`, `volume-pause`, `volume-resume`). */
  serveMemberOp(request: RpcRequest): Promise<unknown>;
  close(): void;
}

/** Bound on a forwarded snapshot (the owner's pause is 10 s; the commit follows). */
const FORWARD_TIMEOUT_MS = 30_000;

export function createSnapshotServices(options: SnapshotServicesOptions, modules: SnapshotServicesModules): SnapshotServices {
  const { commands, pool, ops, sessions } = modules;
  const logger = modules.logger.child({ component: 'snapshots' });
  const client = new SnapshotReplicaClient(
    { nodeId: options.nodeId, secret: options.secret },
    {
      peerAddress: (nodeId) => {
        const node = findNode(commands.state, nodeId);
        return node === undefined ? undefined : parsePeerAddress(node.addresses.peer);
      },
      ...(modules.connectPeer === undefined ? {} : { connectPeer: modules.connectPeer }),
      logger,
    },
  );
  const localVolume = (name: string): PausableVolume | undefined => {
    const session = sessions.get(name);
    return session === undefined || session.stopped ? undefined : session.volume;
  };
  const holds = new PauseHolds({ localVolume, logger });
  const coordinator = new SnapshotCoordinator(
    { nodeId: options.nodeId, ...(options.pauseTimeoutMs === undefined ? {} : { pauseTimeoutMs: options.pauseTimeoutMs }) },
    { commands, replicas: client, localVolume, ...memberCalls(modules.callMember), logger },
  );
  const readers = new SnapshotReaders(
    { nodeId: options.nodeId },
    {
      state: () => commands.state,
      localRead: (volumeId, snapshotId, offset, target) => ops.read(volumeId, snapshotId, offset, target),
      holdsLocally: (volumeId, snapshotId) => pool.listSnapshots(volumeId).some((info) => info.snapshotId === snapshotId),
      client,
      logger,
    },
  );
  const serveMemberOp = async (request: RpcRequest): Promise<unknown> => {
    switch (request.op) {
      case 'snapshot-create':
        return coordinator.createSnapshot({ volume: request.volume, snapshot: request.snapshot, ...(request.groupId === undefined ? {} : { groupId: request.groupId }), forwarded: true });
      case 'volume-pause':
        return holds.pause(request.volume, request.holdMs);
      case 'volume-resume':
        holds.resume(request.token);
        return null;
      default:
        throw new PlinthError('NOT_SUPPORTED', `peer op ${request.op} is not a snapshot member op`);
    }
  };
  return { coordinator, readers, serveMemberOp, close: () => holds.close() };
}

/** The coordinator's peer calls over `callMember`, with their answers checked. */
function memberCalls(callMember: SnapshotServicesModules['callMember']): Pick<SnapshotCoordinatorModules, 'forwardToOwner' | 'pauseOwner' | 'resumeOwner'> {
  if (callMember === undefined) return {};
  return {
    forwardToOwner: async (owner, request) =>
      decodeSnapshotRecord(await callMember(owner, { op: 'snapshot-create', volume: request.volume, snapshot: request.snapshot, ...(request.groupId === undefined ? {} : { groupId: request.groupId }) }, { timeoutMs: FORWARD_TIMEOUT_MS })),
    pauseOwner: async (owner, volume, holdMs) => decodeHold(await callMember(owner, { op: 'volume-pause', volume, holdMs }, { timeoutMs: holdMs })),
    resumeOwner: async (owner, volume, token) => {
      await callMember(owner, { op: 'volume-resume', volume, token }, { timeoutMs: 5000 });
    },
  };
}

function decodeHold(value: unknown): { token: string } | null {
  if (value === null) return null;
  const token = typeof value === 'object' ? (value as Record<string, unknown>)['token'] : undefined;
  if (typeof token !== 'string') throw new PlinthError('PROTOCOL_ERROR', 'the owner answered a write pause with a malformed hold', { reason: 'bad-hold' });
  return { token };
}

/** The owner's answer to a forwarded `snapshot-create` (peer RPC JSON): checked before it is trusted. */
export function decodeSnapshotRecord(value: unknown): SnapshotRecord {
  const record = typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
  const holders = record['holders'];
  const ok =
    typeof record['id'] === 'string' &&
    typeof record['name'] === 'string' &&
    typeof record['createdAt'] === 'string' &&
    typeof record['sizeBytes'] === 'number' &&
    typeof record['generation'] === 'number' &&
    Array.isArray(holders) &&
    holders.every((holder) => typeof holder === 'string');
  if (!ok) throw new PlinthError('PROTOCOL_ERROR', 'the owner answered a forwarded snapshot with a malformed record', { reason: 'bad-snapshot' });
  return record as unknown as SnapshotRecord;
}
