import { PlinthError } from '../../common/plinth-error.js';
import { findVolume, findVolumeById, isNodeUp, type ClusterState, type ReplicaRecord, type VolumeRecord } from './cluster-state.js';
import { assertTimestamp, requireNode, requireVolume, withVolume } from './state-assertions.js';
import { assertVolumeName, assertVolumeSize, MAX_VOLUMES } from './volume-rules.js';
import { stampCurrentReplicas } from './data-generations.js';
import type { VolumeApplied } from './replica-commands.js';

/**
 * Snapshots, clones and revert in the cluster state (issue 8; docs/snapshots.md
 * "In the cluster"). The data is in the pools of the holder nodes, taken
 * there before these commands are proposed (daemon/snapshots/
 * snapshot-coordinator.ts); the state only records where it is. Pure: the
 * appliers throw refusals like every other.
 */

/** One snapshot of a volume, as every node agrees on it. */
export interface SnapshotRecord {
  /** The pool's snapshot id on every holder (a UUID chosen by the proposer). */
  readonly id: string;
  /** User-facing, unique per volume (SNAPSHOT_NAME_RULE). */
  readonly name: string;
  /** ISO-8601, decided by the proposer's clock. */
  readonly createdAt: string;
  /** The volume's logical size when it was taken. */
  readonly sizeBytes: number;
  /** The volume generation the replicas took it at (fenced like every replica request). */
  readonly generation: number;
  /** Nodes whose pool holds it: the in-sync replicas at creation, minus replicas removed since. */
  readonly holders: readonly string[];
  /** Shared by the snapshots of one group snapshot (issue 8 "Group snapshots"). */
  readonly groupId?: string;
}

/** Where a clone's data came from (for inspect; the pools keep the clone independent of it). */
export interface ClonedFrom {
  readonly volumeId: string;
  readonly snapshotId: string;
}

export const SNAPSHOT_NAME_RULE = '1-63 characters of A-Z, a-z, 0-9, ".", "_" and "-", starting with a letter or digit';
const SNAPSHOT_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
export const SNAPSHOT_NAME_PATTERN_SOURCE = SNAPSHOT_NAME_PATTERN.source;
/** The pool keeps at most this many per volume (pool-types.ts MAX_SNAPSHOTS_PER_VOLUME); the state refuses earlier. */
export const MAX_SNAPSHOTS_PER_VOLUME = 1024;

export interface SnapshotCreateCommand {
  readonly type: 'snapshot.create';
  /** The volume's name. */
  readonly name: string;
  readonly snapshotId: string;
  readonly snapshotName: string;
  readonly createdAt: string;
  /** Must still be the volume's generation: a newer owner since means the replicas' copies may differ. */
  readonly generation: number;
  readonly holders: readonly string[];
  readonly groupId?: string;
}

export interface SnapshotDeleteCommand {
  readonly type: 'snapshot.delete';
  readonly name: string;
  readonly snapshotName: string;
}

/** A new volume whose replicas are the snapshot's holders, each holding the pool clone already. */
export interface VolumeCloneCommand {
  readonly type: 'volume.clone';
  /** The source volume's name. */
  readonly name: string;
  readonly snapshotName: string;
  readonly cloneId: string;
  readonly cloneName: string;
  readonly createdAt: string;
  /** The nodes that made the pool clone: a subset of the snapshot's holders. */
  readonly holders: readonly string[];
}

/** The in-sync replicas were reverted to the snapshot; a new generation fences anything older. */
export interface VolumeRevertCommand {
  readonly type: 'volume.revert';
  readonly name: string;
  readonly snapshotName: string;
  /** The generation the REVERT requests carried: refused (FENCED) if an attach came in between. */
  readonly generation: number;
  readonly at: string;
}

/**
 * A rebuild copied the snapshot into the replica on `nodeId` (daemon/snapshots/
 * snapshot-rebuild.ts; docs/snapshots.md "Rebuilds"): that node's pool holds it now.
 */
export interface SnapshotHolderAddCommand {
  readonly type: 'snapshot.holder-add';
  readonly name: string;
  readonly snapshotName: string;
  readonly nodeId: string;
}

export type SnapshotCommand = SnapshotCreateCommand | SnapshotDeleteCommand | VolumeCloneCommand | VolumeRevertCommand | SnapshotHolderAddCommand;

export function isValidSnapshotName(name: string): boolean {
  return SNAPSHOT_NAME_PATTERN.test(name);
}

export function assertSnapshotName(name: string): void {
  if (!isValidSnapshotName(name)) {
    throw new PlinthError('INVALID_NAME', `invalid snapshot name ${JSON.stringify(name)}: use ${SNAPSHOT_NAME_RULE}`, { name });
  }
}

export function snapshotsOf(volume: VolumeRecord): readonly SnapshotRecord[] {
  return volume.snapshots ?? [];
}

export function findSnapshot(volume: VolumeRecord, snapshotName: string): SnapshotRecord | undefined {
  return snapshotsOf(volume).find((snapshot) => snapshot.name === snapshotName);
}

export function requireSnapshot(volume: VolumeRecord, snapshotName: string): SnapshotRecord {
  const snapshot = findSnapshot(volume, snapshotName);
  if (snapshot === undefined) {
    throw new PlinthError('SNAPSHOT_NOT_FOUND', `volume ${volume.name} has no snapshot ${JSON.stringify(snapshotName)}`, {
      name: volume.name,
      snapshot: snapshotName,
    });
  }
  return snapshot;
}

export function createSnapshot(state: ClusterState, command: SnapshotCreateCommand): VolumeApplied {
  const volume = requireVolume(state, command.name);
  assertSnapshotName(command.snapshotName);
  assertTimestamp(command.createdAt, 'createdAt');
  assertGeneration(volume, command.generation, command.type);
  if (findSnapshot(volume, command.snapshotName) !== undefined) {
    throw new PlinthError('SNAPSHOT_EXISTS', `volume ${volume.name} already has a snapshot ${JSON.stringify(command.snapshotName)}`, {
      name: volume.name,
      snapshot: command.snapshotName,
    });
  }
  const all = allSnapshotIds(state);
  if (command.snapshotId.length === 0 || all.has(command.snapshotId)) {
    throw new PlinthError('INVALID_ARGUMENT', `snapshot id ${JSON.stringify(command.snapshotId)} is empty or already in use`, { snapshotId: command.snapshotId });
  }
  if (snapshotsOf(volume).length >= MAX_SNAPSHOTS_PER_VOLUME) {
    throw new PlinthError('SNAPSHOT_LIMIT', `volume ${volume.name} already has the maximum of ${MAX_SNAPSHOTS_PER_VOLUME} snapshots`, { name: volume.name });
  }
  assertHoldersAreInSync(volume, command.holders);
  const snapshot: SnapshotRecord = {
    id: command.snapshotId,
    name: command.snapshotName,
    createdAt: command.createdAt,
    sizeBytes: volume.sizeBytes,
    generation: command.generation,
    holders: [...command.holders],
    ...(command.groupId === undefined ? {} : { groupId: command.groupId }),
  };
  return replaceSnapshots(state, volume, [...snapshotsOf(volume), snapshot]);
}

export function deleteSnapshot(state: ClusterState, command: SnapshotDeleteCommand): VolumeApplied {
  const volume = requireVolume(state, command.name);
  const snapshot = requireSnapshot(volume, command.snapshotName);
  return replaceSnapshots(state, volume, snapshotsOf(volume).filter((kept) => kept.id !== snapshot.id));
}

/**
 * Idempotent: a node already holding it changes nothing. The node must hold a
 * replica of the volume (any state: the copy happens before the replica's live
 * rebuild), else the pool copy would be freed unrecorded (dropSnapshotHolder).
 */
export function addSnapshotHolder(state: ClusterState, command: SnapshotHolderAddCommand): VolumeApplied {
  const volume = requireVolume(state, command.name);
  const snapshot = requireSnapshot(volume, command.snapshotName);
  if (!volume.replicas.some((replica) => replica.nodeId === command.nodeId)) {
    throw new PlinthError('INVALID_ARGUMENT', `volume ${volume.name} has no replica on node ${command.nodeId}: it cannot hold snapshot ${snapshot.name}`, {
      name: volume.name,
      snapshot: snapshot.name,
      nodeId: command.nodeId,
    });
  }
  if (snapshot.holders.includes(command.nodeId)) return { state, volume };
  const updated: SnapshotRecord = { ...snapshot, holders: [...snapshot.holders, command.nodeId] };
  return replaceSnapshots(state, volume, snapshotsOf(volume).map((kept) => (kept.id === snapshot.id ? updated : kept)));
}

export function cloneVolume(state: ClusterState, command: VolumeCloneCommand): VolumeApplied {
  const source = requireVolume(state, command.name);
  const snapshot = requireSnapshot(source, command.snapshotName);
  assertVolumeName(command.cloneName);
  assertVolumeSize(snapshot.sizeBytes);
  assertTimestamp(command.createdAt, 'createdAt');
  if (findVolume(state, command.cloneName) !== undefined) {
    throw new PlinthError('VOLUME_EXISTS', `volume ${command.cloneName} already exists`, { name: command.cloneName });
  }
  if (command.cloneId.length === 0 || findVolumeById(state, command.cloneId) !== undefined) {
    throw new PlinthError('INVALID_ARGUMENT', `volume id ${JSON.stringify(command.cloneId)} is empty or already in use`, { id: command.cloneId });
  }
  if (Object.keys(state.volumes).length >= MAX_VOLUMES) {
    throw new PlinthError('NO_SPACE', `the cluster already holds the maximum of ${MAX_VOLUMES} volumes`);
  }
  const holders = new Set(snapshot.holders);
  if (command.holders.length === 0 || new Set(command.holders).size !== command.holders.length || command.holders.some((nodeId) => !holders.has(nodeId))) {
    throw new PlinthError('INVALID_ARGUMENT', `clone ${command.cloneName}: its replicas must be distinct holders of ${source.name}@${snapshot.name} [${snapshot.holders.join(', ')}]`, {
      holders: command.holders,
    });
  }
  for (const nodeId of command.holders) requireNode(state, nodeId);
  const clone: VolumeRecord = {
    id: command.cloneId,
    name: command.cloneName,
    sizeBytes: snapshot.sizeBytes,
    replicaCount: command.holders.length,
    createdAt: command.createdAt,
    attachedTo: null,
    generation: 0,
    // Every holder's pool made the same clone of the same snapshot: all identical, all in sync.
    replicas: command.holders.map((nodeId) => ({ nodeId, state: 'in-sync' as const, since: command.createdAt })),
    graceMs: source.graceMs,
    clonedFrom: { volumeId: source.id, snapshotId: snapshot.id },
  };
  return { state: withVolume(state, clone), volume: clone };
}

/**
 * Detached only. Every in-sync replica reverted (the coordinator refuses when
 * one of them does not hold the snapshot), so they are current at a new
 * generation; the others are stale and lose their delta-resync markers: a
 * delta against the pre-revert history would miss the revert, so they are
 * rebuilt by a full copy.
 */
export function revertVolume(state: ClusterState, command: VolumeRevertCommand): VolumeApplied {
  const volume = requireVolume(state, command.name);
  const snapshot = requireSnapshot(volume, command.snapshotName);
  assertTimestamp(command.at, 'at');
  if (volume.attachedTo !== null) {
    throw new PlinthError('VOLUME_ATTACHED', `volume ${volume.name} is attached to node ${volume.attachedTo}; detach it before reverting`, {
      name: volume.name,
      attachedTo: volume.attachedTo,
    });
  }
  assertGeneration(volume, command.generation, command.type);
  const holders = new Set(snapshot.holders);
  const missing = volume.replicas.filter((replica) => replica.state === 'in-sync' && !holders.has(replica.nodeId)).map((replica) => replica.nodeId);
  if (missing.length > 0) {
    throw new PlinthError('SNAPSHOT_NOT_FOUND', `volume ${volume.name}: the in-sync replicas on ${missing.join(', ')} do not hold snapshot ${snapshot.name}`, {
      name: volume.name,
      snapshot: snapshot.name,
      missing,
    });
  }
  const generation = volume.generation + 1;
  const replicas = stampCurrentReplicas(volume.replicas.map(withoutMarkersUnlessInSync), generation);
  return { state: withVolume(state, { ...volume, generation, replicas }), volume: { ...volume, generation, replicas } };
}

/**
 * A replica left `nodeId` (replica.remove, node.remove): its pool copy of the
 * volume, snapshots included, is freed there, so the node holds none of
 * them any more. A snapshot with no holder left is gone (docs/snapshots.md
 * "Limits").
 */
export function dropSnapshotHolder(volume: VolumeRecord, nodeId: string): VolumeRecord {
  if (volume.snapshots === undefined || volume.replicas.some((replica) => replica.nodeId === nodeId)) return volume;
  const snapshots = volume.snapshots
    .map((snapshot) => (snapshot.holders.includes(nodeId) ? { ...snapshot, holders: snapshot.holders.filter((holder) => holder !== nodeId) } : snapshot))
    .filter((snapshot) => snapshot.holders.length > 0);
  return { ...volume, snapshots };
}

/** Every volume's holders after `nodeId` stopped holding replicas of those that no longer place one there. */
export function dropSnapshotHoldersEverywhere(state: ClusterState, nodeId: string): ClusterState {
  let next = state;
  for (const volume of Object.values(state.volumes)) {
    const updated = dropSnapshotHolder(volume, nodeId);
    if (updated !== volume) next = withVolume(next, updated);
  }
  return next;
}

/** True when some holder of the snapshot is a member the cluster sees up. */
export function snapshotReadable(state: ClusterState, snapshot: SnapshotRecord): boolean {
  return snapshot.holders.some((nodeId) => isNodeUp(state, nodeId));
}

function withoutMarkersUnlessInSync(replica: ReplicaRecord): ReplicaRecord {
  if (replica.state === 'in-sync' || replica.resyncMarkers === undefined) return replica;
  const { resyncMarkers: _void, ...rest } = replica;
  return rest;
}

function assertGeneration(volume: VolumeRecord, generation: number, commandType: string): void {
  if (generation !== volume.generation) {
    throw new PlinthError(
      'FENCED',
      `volume ${volume.name} is at generation ${volume.generation}; ${commandType} taken at generation ${generation} is stale (a new owner attached meanwhile: retry)`,
      { name: volume.name, generation, currentGeneration: volume.generation },
    );
  }
}

/** Holders must be distinct in-sync replicas, and every in-sync replica must be one (never fewer holders silently). */
function assertHoldersAreInSync(volume: VolumeRecord, holders: readonly string[]): void {
  const inSync = volume.replicas.filter((replica) => replica.state === 'in-sync').map((replica) => replica.nodeId);
  const given = new Set(holders);
  const missing = inSync.filter((nodeId) => !given.has(nodeId));
  const extra = holders.filter((nodeId) => !inSync.includes(nodeId));
  if (given.size !== holders.length || holders.length === 0 || missing.length > 0 || extra.length > 0) {
    throw new PlinthError(
      'INVALID_ARGUMENT',
      `volume ${volume.name}: snapshot holders [${holders.join(', ')}] must be exactly its in-sync replicas [${inSync.join(', ')}] (the set changed meanwhile: retry)`,
      { name: volume.name, holders, inSync },
    );
  }
}

function allSnapshotIds(state: ClusterState): Set<string> {
  const ids = new Set<string>();
  for (const volume of Object.values(state.volumes)) for (const snapshot of snapshotsOf(volume)) ids.add(snapshot.id);
  return ids;
}

function replaceSnapshots(state: ClusterState, volume: VolumeRecord, snapshots: readonly SnapshotRecord[]): VolumeApplied {
  const updated: VolumeRecord = { ...volume, snapshots };
  return { state: withVolume(state, updated), volume: updated };
}
