import { PlinthError } from '../../common/plinth-error.js';
import { isValidNodeId } from '../config/setting-parsers.js';
import { findNode, nodeCount, type ClusterState, type NodeLabels, type NodeRecord, type VolumeRecord } from './cluster-state.js';
import type { NodeCapacityCommand, NodeDownCommand, NodeDrainCommand, NodeJoinCommand, NodeRemoveCommand, NodeUpCommand } from './commands.js';
import { assertByteCount, assertTimestamp, requireNode, withNode } from './state-assertions.js';
import { MAX_NODES } from './volume-rules.js';

/** Appliers of the node.* commands (membership, liveness, capacity). Pure; they throw refusals. */

export interface NodeApplied {
  readonly state: ClusterState;
  readonly node: NodeRecord;
}

const MAX_LABEL_LENGTH = 64;

export function joinNode(state: ClusterState, command: NodeJoinCommand): NodeApplied {
  if (!isValidNodeId(command.nodeId)) {
    throw new PlinthError('INVALID_ARGUMENT', `invalid node id ${JSON.stringify(command.nodeId)}`, { nodeId: command.nodeId });
  }
  const { api, peer, nbd, iscsi } = command.addresses;
  for (const [role, address] of Object.entries({ api, peer, nbd, iscsi })) {
    if (typeof address !== 'string' || address.length === 0) {
      throw new PlinthError('INVALID_ARGUMENT', `node ${command.nodeId}: the ${role} address must be a non-empty string`, {
        nodeId: command.nodeId,
      });
    }
  }
  assertTimestamp(command.joinedAt, 'joinedAt');
  const labels = checkLabels(command.nodeId, command.labels ?? {});
  const known = findNode(state, command.nodeId);
  if (known === undefined && nodeCount(state) >= MAX_NODES) {
    throw new PlinthError('INVALID_ARGUMENT', `the cluster already has the maximum of ${MAX_NODES} nodes`, { nodeId: command.nodeId });
  }
  // A member re-joining (restart with new addresses) keeps its history.
  const node: NodeRecord = known === undefined
    ? {
        id: command.nodeId,
        addresses: { api, peer, nbd, iscsi },
        labels,
        state: 'up',
        stateSince: command.joinedAt,
        joinedAt: command.joinedAt,
        capacityBytes: 0,
        freeBytes: 0,
        diskCount: 0,
        capacityReportedAt: null,
      }
    : { ...known, addresses: { api, peer, nbd, iscsi }, labels };
  return { state: withNode(state, node), node };
}

function checkLabels(nodeId: string, labels: NodeLabels): NodeLabels {
  const checked: { zone?: string; rack?: string } = {};
  for (const [key, value] of Object.entries(labels)) {
    if ((key !== 'zone' && key !== 'rack') || typeof value !== 'string' || value.length === 0 || value.length > MAX_LABEL_LENGTH) {
      throw new PlinthError('INVALID_ARGUMENT', `node ${nodeId}: labels are zone and rack, each 1-${MAX_LABEL_LENGTH} characters`, {
        nodeId,
        label: key,
      });
    }
    checked[key] = value;
  }
  return checked;
}

/**
 * Removes a member and its replicas. Refused with LAST_IN_SYNC_REPLICA while
 * it holds the only in-sync replica of a volume (that would lose the data).
 * A volume it owned is left detached; the next attach bumps the generation,
 * which fences the removed node should it still be running (invariant 3).
 */
export function removeNode(state: ClusterState, command: NodeRemoveCommand): NodeApplied {
  const node = requireNode(state, command.nodeId);
  const stranded = Object.values(state.volumes)
    .filter((volume) => {
      const inSync = volume.replicas.filter((replica) => replica.state === 'in-sync');
      return inSync.length === 1 && inSync[0]?.nodeId === node.id;
    })
    .map((volume) => volume.name)
    .sort();
  if (stranded.length > 0) {
    throw new PlinthError(
      'LAST_IN_SYNC_REPLICA',
      `node ${node.id} holds the last in-sync replica of ${stranded.length} volume(s) (${stranded.slice(0, 5).join(', ')}); ` +
        `drain it first (plinth node drain ${node.id} --wait) or delete the volumes`,
      { nodeId: node.id, volumes: stranded.slice(0, 20) },
    );
  }
  const volumes: Record<string, VolumeRecord> = {};
  for (const [name, volume] of Object.entries(state.volumes)) {
    const replicas = volume.replicas.filter((replica) => replica.nodeId !== node.id);
    const attachedTo = volume.attachedTo === node.id ? null : volume.attachedTo;
    volumes[name] = replicas.length === volume.replicas.length && attachedTo === volume.attachedTo ? volume : { ...volume, replicas, attachedTo };
  }
  const nodes = Object.fromEntries(Object.entries(state.nodes).filter(([id]) => id !== node.id));
  return { state: { ...state, nodes, volumes }, node };
}

export function setNodeLiveness(state: ClusterState, command: NodeDownCommand | NodeUpCommand): NodeApplied {
  const node = requireNode(state, command.nodeId);
  assertTimestamp(command.at, 'at');
  const wanted = command.type === 'node.down' ? 'down' : 'up';
  if (node.state === wanted) return { state, node };
  const updated: NodeRecord = { ...node, state: wanted, stateSince: command.at };
  return { state: withNode(state, updated), node: updated };
}

export function reportCapacity(state: ClusterState, command: NodeCapacityCommand): NodeApplied {
  const node = requireNode(state, command.nodeId);
  assertByteCount(command.capacityBytes, 'capacityBytes');
  assertByteCount(command.freeBytes, 'freeBytes');
  assertByteCount(command.diskCount, 'diskCount');
  assertTimestamp(command.at, 'at');
  if (command.freeBytes > command.capacityBytes) {
    throw new PlinthError('INVALID_ARGUMENT', `node ${node.id}: free bytes ${command.freeBytes} exceed capacity ${command.capacityBytes}`, {
      nodeId: node.id,
    });
  }
  const updated: NodeRecord = {
    ...node,
    capacityBytes: command.capacityBytes,
    freeBytes: command.freeBytes,
    diskCount: command.diskCount,
    capacityReportedAt: command.at,
  };
  return { state: withNode(state, updated), node: updated };
}

/**
 * Start or cancel draining (issue 4 "Drain"). Draining only changes where
 * the scheduler may place and what the drain reconciler moves; nothing is
 * taken away by this entry itself, so it never lowers redundancy.
 */
export function setNodeDraining(state: ClusterState, command: NodeDrainCommand): NodeApplied {
  const node = requireNode(state, command.nodeId);
  assertTimestamp(command.at, 'at');
  const draining = node.drainingSince !== undefined;
  if (draining === command.draining) return { state, node };
  let updated: NodeRecord;
  if (command.draining) {
    updated = { ...node, drainingSince: command.at };
  } else {
    const { drainingSince: _cancelled, ...rest } = node;
    updated = rest;
  }
  return { state: withNode(state, updated), node: updated };
}
