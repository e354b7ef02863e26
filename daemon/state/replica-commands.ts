import { PlinthError } from '../../common/plinth-error.js';
import { findReplica, type ClusterState, type ReplicaRecord, type ReplicaState, type VolumeRecord } from './cluster-state.js';
import type {
  ReplicaAddCommand,
  ReplicaFaultCommand,
  ReplicaInSyncCommand,
  ReplicaRebuildingCommand,
  ReplicaRemoveCommand,
} from './commands.js';
import { assertTimestamp, requireNode, requireVolume, withVolume } from './state-assertions.js';

/**
 * Appliers of the replica.* commands: the in-sync set changes only through
 * these committed entries (ARCHITECTURE invariant 2). Pure; they throw refusals.
 *
 *   faulted ──replica.rebuilding──▶ rebuilding ──replica.in-sync──▶ in-sync
 *      ▲                                │                              │
 *      └──────────replica.fault─────────┴──────────────────────────────┘
 */

export interface VolumeApplied {
  readonly state: ClusterState;
  readonly volume: VolumeRecord;
}

type GenerationCommand = ReplicaFaultCommand | ReplicaRebuildingCommand | ReplicaInSyncCommand;

/** Which states each transition may start from; the target state itself is a no-op. */
const ALLOWED_FROM: Readonly<Record<GenerationCommand['type'], readonly ReplicaState[]>> = {
  'replica.fault': ['in-sync', 'rebuilding'],
  'replica.rebuilding': ['faulted'],
  'replica.in-sync': ['rebuilding'],
};

const TARGET: Readonly<Record<GenerationCommand['type'], ReplicaState>> = {
  'replica.fault': 'faulted',
  'replica.rebuilding': 'rebuilding',
  'replica.in-sync': 'in-sync',
};

export function changeReplicaState(state: ClusterState, command: GenerationCommand): VolumeApplied {
  const volume = requireVolume(state, command.name);
  assertTimestamp(command.at, 'at');
  // Invariant 3: only the current generation's owner (or its rebuilder) changes the set.
  if (command.generation !== volume.generation) {
    throw new PlinthError(
      'FENCED',
      `volume ${volume.name} is at generation ${volume.generation}; ${command.type} from generation ${command.generation} is stale`,
      { name: volume.name, generation: command.generation, currentGeneration: volume.generation },
    );
  }
  const replica = requireReplica(volume, command.nodeId);
  const target = TARGET[command.type];
  if (replica.state === target) return { state, volume };
  if (!ALLOWED_FROM[command.type].includes(replica.state)) {
    throw new PlinthError(
      'INVALID_ARGUMENT',
      `volume ${volume.name}: the replica on ${replica.nodeId} is ${replica.state}; ${command.type} needs ${ALLOWED_FROM[command.type].join(' or ')}`,
      { name: volume.name, nodeId: replica.nodeId, replicaState: replica.state },
    );
  }
  if (replica.state === 'in-sync') assertNotLastInSync(volume, replica.nodeId, command.type);
  // Issue 7 (data-generations.ts): a fault freezes the data generation; back in-sync after a complete catch-up means current.
  const dataGeneration = command.type === 'replica.in-sync' ? { dataGeneration: volume.generation } : {};
  const changed = withResyncMarkers({ ...replica, state: target, since: command.at, ...dataGeneration }, resyncMarkersAfter(volume, replica, command));
  return replaceReplicas(state, volume, volume.replicas.map((r) => (r.nodeId === replica.nodeId ? changed : r)));
}

/**
 * Delta resync markers (issue 4) across a transition: leaving the in-sync set
 * records the command's markers of the other in-sync replicas; a replica
 * already out keeps the markers of its first fault (a newer marker would
 * not cover what it missed before: data loss); back in-sync drops them.
 */
function resyncMarkersAfter(volume: VolumeRecord, replica: ReplicaRecord, command: GenerationCommand): Readonly<Record<string, number>> | undefined {
  if (command.type === 'replica.in-sync') return undefined;
  if (command.type !== 'replica.fault' || replica.state !== 'in-sync') return replica.resyncMarkers;
  const offered = command.resyncMarkers;
  if (offered === undefined) return undefined;
  const kept: Record<string, number> = {};
  for (const other of volume.replicas) {
    if (other.nodeId === replica.nodeId || other.state !== 'in-sync' || !Object.hasOwn(offered, other.nodeId)) continue;
    const markerSeq = offered[other.nodeId];
    if (typeof markerSeq !== 'number' || !Number.isSafeInteger(markerSeq) || markerSeq < 0) {
      throw new PlinthError('INVALID_ARGUMENT', `replica.fault of ${replica.nodeId}: resync marker of ${other.nodeId} must be a non-negative integer`, {
        name: volume.name,
        nodeId: other.nodeId,
      });
    }
    kept[other.nodeId] = markerSeq;
  }
  return Object.keys(kept).length === 0 ? undefined : kept;
}

function withResyncMarkers(replica: ReplicaRecord, markers: Readonly<Record<string, number>> | undefined): ReplicaRecord {
  const { resyncMarkers: _previous, ...rest } = replica;
  return markers === undefined ? rest : { ...rest, resyncMarkers: markers };
}

/** A replica on `nodeId` starts a new history (added, or removed): markers of its old one are void. */
function dropMarkersOf(replicas: readonly ReplicaRecord[], nodeId: string): ReplicaRecord[] {
  return replicas.map((replica) => {
    const markers = replica.resyncMarkers;
    if (markers === undefined || !Object.hasOwn(markers, nodeId)) return replica;
    const { [nodeId]: _void, ...rest } = markers;
    return withResyncMarkers(replica, Object.keys(rest).length === 0 ? undefined : rest);
  });
}

/** A new replica (no data yet, so rebuilding); at most one more than the replica count at a time. */
export function addReplica(state: ClusterState, command: ReplicaAddCommand): VolumeApplied {
  const volume = requireVolume(state, command.name);
  requireNode(state, command.nodeId);
  assertTimestamp(command.at, 'at');
  if (findReplica(volume, command.nodeId) !== undefined) {
    throw new PlinthError('INVALID_ARGUMENT', `volume ${volume.name} already has a replica on node ${command.nodeId}`, {
      name: volume.name,
      nodeId: command.nodeId,
    });
  }
  if (volume.replicas.length > volume.replicaCount) {
    throw new PlinthError(
      'INVALID_ARGUMENT',
      `volume ${volume.name} already has ${volume.replicas.length} replicas for a count of ${volume.replicaCount}; remove one first`,
      { name: volume.name, replicas: volume.replicas.length, replicaCount: volume.replicaCount },
    );
  }
  const added: ReplicaRecord = { nodeId: command.nodeId, state: 'rebuilding', since: command.at };
  return replaceReplicas(state, volume, [...dropMarkersOf(volume.replicas, command.nodeId), added]);
}

export function removeReplica(state: ClusterState, command: ReplicaRemoveCommand): VolumeApplied {
  const volume = requireVolume(state, command.name);
  const replica = requireReplica(volume, command.nodeId);
  if (replica.state === 'in-sync') assertNotLastInSync(volume, replica.nodeId, command.type);
  if (volume.replicas.length === 1) {
    throw new PlinthError('LAST_IN_SYNC_REPLICA', `volume ${volume.name}: cannot remove its only replica`, {
      name: volume.name,
      nodeId: replica.nodeId,
    });
  }
  return replaceReplicas(state, volume, dropMarkersOf(volume.replicas.filter((r) => r.nodeId !== replica.nodeId), replica.nodeId));
}

function requireReplica(volume: VolumeRecord, nodeId: string): ReplicaRecord {
  const replica = findReplica(volume, nodeId);
  if (replica === undefined) {
    throw new PlinthError('INVALID_ARGUMENT', `volume ${volume.name} has no replica on node ${nodeId}`, { name: volume.name, nodeId });
  }
  return replica;
}

/** Invariant 4: a volume always keeps one in-sync replica to fail over to. */
function assertNotLastInSync(volume: VolumeRecord, nodeId: string, commandType: string): void {
  const others = volume.replicas.filter((r) => r.state === 'in-sync' && r.nodeId !== nodeId);
  if (others.length === 0) {
    throw new PlinthError(
      'LAST_IN_SYNC_REPLICA',
      `volume ${volume.name}: the replica on ${nodeId} is its last in-sync copy; ${commandType} refused`,
      { name: volume.name, nodeId },
    );
  }
}

function replaceReplicas(state: ClusterState, volume: VolumeRecord, replicas: readonly ReplicaRecord[]): VolumeApplied {
  const updated: VolumeRecord = { ...volume, replicas };
  return { state: withVolume(state, updated), volume: updated };
}
