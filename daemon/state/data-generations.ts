import { PlinthError } from '../../common/plinth-error.js';
import { isNodeUp, type ClusterState, type VolumeRecord } from './cluster-state.js';

/**
 * Data generations (issue 7): never promote a replica older than what was
 * acknowledged, even when votes alone would allow it (DRBD's
 * `quorate-data-divergence`: the diskful replicas go away, a stale one
 * returns, and a quorum of voters would happily serve it).
 *
 * Each replica records `dataGeneration`, the highest volume generation whose
 * acknowledged writes it is known to hold (ReplicaRecord in cluster-state.ts):
 * - an attach that commits a new generation stamps it on every *current*
 *   replica (below) — they hold everything acknowledged so far;
 * - replica.fault freezes it: writes acknowledged after the fault are not on it;
 * - replica.in-sync (after a complete catch-up, invariant 4) sets it to the
 *   volume's current generation.
 * Missing (state from before issue 7) reads as 0, "unknown": while no replica
 * has been stamped every in-sync replica is current, and the first attach
 * stamps them.
 *
 * The rule: the latest data generation of a volume is the maximum over its
 * replicas, and only an in-sync replica at that generation is *current*: the
 * only kind that may become the source at attach or failover (a sharper
 * invariant 4). A stale replica is never made current by stamping or by
 * marking it in-sync; it re-enters only through a rebuild from a current one.
 * When no current replica is reachable the attach fails with
 * NO_CURRENT_REPLICA and the volume stays unavailable. There is deliberately
 * no operator override that serves a stale replica.
 *
 * Pure functions over a structural replica shape, so the state machine
 * (ReplicaRecord) and the data plane (PlacedReplica) share one rule.
 */
export interface GenerationedReplica {
  readonly nodeId: string;
  /** 'in-sync' | 'rebuilding' | 'faulted' (ReplicaState / ReplicaHealth). */
  readonly state: string;
  readonly dataGeneration?: number;
}

/** Missing means unknown: 0, older than any stamped generation (attach makes generations >= 1). */
export function dataGenerationOf(replica: GenerationedReplica): number {
  return replica.dataGeneration ?? 0;
}

/** The newest data any replica is known to hold: the maximum data generation. */
export function latestDataGeneration(replicas: readonly GenerationedReplica[]): number {
  let latest = 0;
  for (const replica of replicas) latest = Math.max(latest, dataGenerationOf(replica));
  return latest;
}

/** In-sync and at the latest data generation: the only possible sources at attach and failover. */
export function currentDataReplicas<R extends GenerationedReplica>(replicas: readonly R[]): R[] {
  const latest = latestDataGeneration(replicas);
  return replicas.filter((replica) => replica.state === 'in-sync' && dataGenerationOf(replica) === latest);
}

export function currentDataNodeIds(replicas: readonly GenerationedReplica[]): string[] {
  return currentDataReplicas(replicas).map((replica) => replica.nodeId);
}

/**
 * A new generation commits: every current replica holds all acknowledged
 * writes so far, so it is stamped with it. An in-sync replica behind the
 * latest (only possible with a bug or hand-edited state) is left as it is:
 * stamping it would promote stale data; the new owner faults it instead.
 */
export function stampCurrentReplicas<R extends GenerationedReplica>(replicas: readonly R[], generation: number): R[] {
  const current = new Set(currentDataNodeIds(replicas));
  return replicas.map((replica) => (current.has(replica.nodeId) ? { ...replica, dataGeneration: generation } : replica));
}

/**
 * The state machine's half of the rule, checked before volume.attach
 * commits a new generation: refused unless some current replica is on a node
 * the cluster sees up, or on the attaching node itself (a node that just
 * restarted proposes its own attach before node.up commits). The owner's
 * session checks the other half — that a current replica actually answers —
 * before it serves anything (volume-session.ts).
 */
export function assertCurrentReplicaAvailable(state: ClusterState, volume: VolumeRecord, attachingNodeId: string): void {
  const current = currentDataReplicas(volume.replicas);
  if (current.some((replica) => replica.nodeId === attachingNodeId || isNodeUp(state, replica.nodeId))) return;
  throw noCurrentReplicaError(volume.name, volume.replicas, 'none of those nodes is up');
}

/**
 * NO_CURRENT_REPLICA naming where the current data is and which replicas
 * are stale, e.g. "volume db: its current data is on n1, n2 (data
 * generation 7), none reachable; the replica on n3 (faulted at data
 * generation 5) is stale and never served".
 */
export function noCurrentReplicaError(name: string, replicas: readonly GenerationedReplica[], whyUnavailable: string): PlinthError {
  const latest = latestDataGeneration(replicas);
  const current = currentDataNodeIds(replicas);
  const currentSet = new Set(current);
  const stale = replicas.filter((replica) => !currentSet.has(replica.nodeId));
  const where =
    current.length === 0
      ? `no in-sync replica holds its latest data (data generation ${latest})`
      : `its current data is on ${current.join(', ')} (data generation ${latest}), ${whyUnavailable}`;
  const staleText = stale.map((replica) => `${replica.nodeId} (${replica.state} at data generation ${dataGenerationOf(replica)})`);
  const staleClause =
    stale.length === 0 ? '' : `; the ${stale.length === 1 ? 'replica' : 'replicas'} on ${staleText.join(', ')} ${stale.length === 1 ? 'is' : 'are'} stale and never served`;
  return new PlinthError('NO_CURRENT_REPLICA', `volume ${name}: ${where}${staleClause}; it stays unavailable until a current replica returns`, {
    name,
    dataGeneration: latest,
    current,
    stale: stale.map((replica) => ({ nodeId: replica.nodeId, state: replica.state, dataGeneration: dataGenerationOf(replica) })),
  });
}
