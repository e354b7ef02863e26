import { PlinthError } from '../../common/plinth-error.js';
import { SeededPrng } from '../../common/prng.js';
import { compareIds, rackKey, zoneKey } from './failure-domains.js';
import type { PlacementRequest, SchedulerNode } from './placement-types.js';

/**
 * Replica placement (issue 4 "Scheduler"): N distinct up nodes, spread over
 * zones first and racks second, weighted by free capacity, the preferred
 * (attaching) node first when it can hold the volume. Pure and
 * deterministic: returns the node ids, or a PlinthError saying why not
 * (INVALID_ARGUMENT when too few nodes are up, NO_SPACE when too few have
 * room), naming how many nodes qualified.
 */

/** A bound on the cluster a single placement considers: a limit on everything. */
export const MAX_SCHEDULER_NODES = 10_000;

export function placeReplicas(request: PlacementRequest): string[] | PlinthError {
  const invalid = validate(request);
  if (invalid !== undefined) return invalid;
  const excluded = new Set(request.exclude ?? []);
  const up = request.nodes.filter((node) => node.up && !excluded.has(node.id)).sort((a, b) => compareIds(a.id, b.id));
  const fitting = up.filter((node) => node.freeBytes >= request.sizeBytes);
  const counts = {
    replicaCount: request.replicaCount,
    nodes: request.nodes.length,
    upNodes: up.length,
    fittingNodes: fitting.length,
    excluded: excluded.size,
  };
  if (up.length < request.replicaCount) {
    return new PlinthError(
      'INVALID_ARGUMENT',
      `${request.replicaCount} replicas need ${request.replicaCount} distinct up nodes; only ${up.length} of ${request.nodes.length} qualify`,
      counts,
    );
  }
  if (fitting.length < request.replicaCount) {
    return new PlinthError(
      'NO_SPACE',
      `${request.replicaCount} replicas of ${request.sizeBytes} bytes need ${request.replicaCount} nodes with that much free; only ${fitting.length} of ${up.length} up nodes have it`,
      { ...counts, sizeBytes: request.sizeBytes },
    );
  }
  const byId = new Map(request.nodes.map((node) => [node.id, node]));
  const placedAlready = (request.existingNodeIds ?? [])
    .map((id) => byId.get(id))
    .filter((node): node is SchedulerNode => node !== undefined);
  const prng = request.seed === undefined ? undefined : new SeededPrng(request.seed);
  const chosen: SchedulerNode[] = [];
  const preferred = fitting.find((node) => node.id === request.preferNodeId);
  if (preferred !== undefined) chosen.push(preferred);
  while (chosen.length < request.replicaCount) {
    const taken = new Set(chosen.map((node) => node.id));
    const candidates = fitting.filter((node) => !taken.has(node.id));
    const next = pickWeighted(bestSpread(candidates, [...placedAlready, ...chosen]), prng);
    if (next === undefined) break; // cannot happen: fitting.length >= replicaCount was checked
    chosen.push(next);
  }
  return chosen.map((node) => node.id);
}

function validate(request: PlacementRequest): PlinthError | undefined {
  if (!Number.isSafeInteger(request.replicaCount) || request.replicaCount < 1) {
    return new PlinthError('INVALID_ARGUMENT', `replica count must be a positive integer, got ${request.replicaCount}`, {
      replicaCount: request.replicaCount,
    });
  }
  if (!Number.isSafeInteger(request.sizeBytes) || request.sizeBytes < 0) {
    return new PlinthError('INVALID_ARGUMENT', `volume size must be a non-negative integer, got ${request.sizeBytes}`, {
      sizeBytes: request.sizeBytes,
    });
  }
  if (request.nodes.length > MAX_SCHEDULER_NODES) {
    return new PlinthError('INVALID_ARGUMENT', `placement over ${request.nodes.length} nodes exceeds ${MAX_SCHEDULER_NODES}`, {
      nodes: request.nodes.length,
    });
  }
  if (new Set(request.nodes.map((node) => node.id)).size !== request.nodes.length) {
    return new PlinthError('INVALID_ARGUMENT', 'node ids given to the scheduler must be unique');
  }
  return undefined;
}

/** Candidates in the least-used zone, and among those the least-used rack. */
function bestSpread(candidates: readonly SchedulerNode[], placed: readonly SchedulerNode[]): SchedulerNode[] {
  const zoneUse = (node: SchedulerNode): number => placed.filter((other) => zoneKey(other) === zoneKey(node)).length;
  const rackUse = (node: SchedulerNode): number => placed.filter((other) => rackKey(other) === rackKey(node)).length;
  const minZone = Math.min(...candidates.map(zoneUse));
  const inZone = candidates.filter((node) => zoneUse(node) === minZone);
  const minRack = Math.min(...inZone.map(rackUse));
  return inZone.filter((node) => rackUse(node) === minRack);
}

/** Seeded: a draw weighted by free bytes. Unseeded: most free bytes, ties to the smaller id. */
function pickWeighted(candidates: readonly SchedulerNode[], prng: SeededPrng | undefined): SchedulerNode | undefined {
  if (prng === undefined) {
    return [...candidates].sort((a, b) => b.freeBytes - a.freeBytes || compareIds(a.id, b.id))[0];
  }
  const total = candidates.reduce((sum, node) => sum + node.freeBytes, 0);
  if (total <= 0) return candidates[prng.nextInt(candidates.length)];
  let ticket = prng.nextFloat() * total;
  for (const node of candidates) {
    ticket -= node.freeBytes;
    if (ticket < 0) return node;
  }
  return candidates[candidates.length - 1];
}
