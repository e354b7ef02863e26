import { PlinthError } from '../../common/plinth-error.js';
import { compareIds, distanceFrom, zoneKey } from './failure-domains.js';
import type { RetireRequest, SchedulerNode } from './placement-types.js';

/**
 * Which replica retires once a locality replica on the owner is in sync
 * (issue 4: "once in sync, the one farthest away retires"). Farthest first
 * (a down node counts as farthest); among equals, the one whose zone holds
 * the most replicas (retiring it keeps the spread), then the node with the
 * least free space, then the larger id, so the answer is deterministic.
 */
export function retireCandidate(request: RetireRequest): string | PlinthError {
  const byId = new Map(request.nodes.map((node) => [node.id, node]));
  const owner = byId.get(request.ownerNodeId);
  if (request.replicaNodeIds.length < 2) {
    return new PlinthError('INVALID_ARGUMENT', `a volume with ${request.replicaNodeIds.length} replica(s) has none to retire`, {
      replicas: request.replicaNodeIds.length,
    });
  }
  // A replica on a node the scheduler no longer knows is the first to go.
  const unknown = request.replicaNodeIds.filter((id) => !byId.has(id)).sort(compareIds);
  if (unknown[0] !== undefined) return unknown[0];
  const replicas = request.replicaNodeIds
    .map((id) => byId.get(id))
    .filter((node): node is SchedulerNode => node !== undefined);
  const candidates = replicas.filter((node) => node.id !== request.ownerNodeId);
  if (candidates.length === 0) {
    return new PlinthError('INVALID_ARGUMENT', 'only the owner holds a replica; nothing to retire', {
      ownerNodeId: request.ownerNodeId,
    });
  }
  const zoneCount = (node: SchedulerNode): number => replicas.filter((other) => zoneKey(other) === zoneKey(node)).length;
  const ranked = [...candidates].sort(
    (a, b) =>
      distanceFrom(owner, b) - distanceFrom(owner, a) ||
      zoneCount(b) - zoneCount(a) ||
      a.freeBytes - b.freeBytes ||
      compareIds(b.id, a.id),
  );
  const first = ranked[0];
  return first === undefined ? new PlinthError('INTERNAL', 'retire ranking lost its candidates') : first.id;
}
