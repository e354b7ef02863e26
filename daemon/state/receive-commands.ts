import { PlinthError } from '../../common/plinth-error.js';
import type { ClusterState, VolumeRecord } from './cluster-state.js';
import type { VolumeApplied } from './replica-commands.js';
import { assertTimestamp, requireNode, requireVolume, withVolume } from './state-assertions.js';

/**
 * `plinth volume receive` in the cluster state (issue 8; docs/snapshots.md
 * "Receive"). A volume with `receive` set is being written by a receive: it
 * is not served to clients (exports and attach refuse it, see
 * assertNotReceiving) and the API shows it as receiving, not ready. The
 * progress is the receiver's durable resume point: it is committed only
 * after a flush of the volume covered every chunk before it
 * (receive-stream-writer.ts), so `receive --resume` can continue from any
 * node. `receivedSnapshots` remembers which local snapshot is which source
 * snapshot, so a later incremental stream finds its base by the source id.
 */
export interface ReceiveSource {
  readonly sourceClusterId: string;
  readonly sourceVolumeId: string;
  readonly sourceVolumeName: string;
  /** The sent snapshot: the received volume gets a snapshot of the same name when the stream verified. */
  readonly snapshotName: string;
  readonly sourceSnapshotId: string;
  /** Incremental: the source id of the base snapshot; null for a full stream. */
  readonly baseSourceSnapshotId: string | null;
  readonly totalChunkCount: number;
  readonly volumeSizeBytes: number;
}

export interface ReceiveProgress {
  readonly nextChunk: number;
  readonly chainDigestHex: string;
  readonly minOffsetBytes: number;
}

export interface ReceiveRecord {
  /** The node writing it: the only node the volume may be attached to while it is receiving. */
  readonly nodeId: string;
  readonly source: ReceiveSource;
  readonly progress: ReceiveProgress;
  readonly startedAt: string;
  /** Incremental: the local snapshot the volume was reverted to before the first chunk (and is reverted to on abort). */
  readonly baseSnapshotName: string | null;
}

export interface ReceivedSnapshot {
  /** The local snapshot's name (the sent snapshot's name). */
  readonly name: string;
  readonly sourceClusterId: string;
  readonly sourceSnapshotId: string;
}

/**
 * Full receives carry `create`: the volume is created and marked receiving
 * in one entry, so it is never visible half-made. Incremental ones name an
 * existing, detached volume holding the base snapshot.
 */
export interface VolumeReceiveStartCommand {
  readonly type: 'volume.receive-start';
  readonly name: string;
  /** The receiving node (ReceiveRecord.nodeId). */
  readonly nodeId: string;
  readonly at: string;
  readonly source: ReceiveSource;
  /** volume.create's fields (apply-command.ts applies that first). */
  readonly create?: { readonly id: string; readonly sizeBytes: number; readonly replicaCount?: number; readonly placement?: readonly string[] };
}

export interface VolumeReceiveProgressCommand {
  readonly type: 'volume.receive-progress';
  readonly name: string;
  readonly nextChunk: number;
  readonly chainDigestHex: string;
  readonly minOffsetBytes: number;
}

/** The stream verified and the snapshot `source.snapshotName` was taken: the volume becomes visible. */
export interface VolumeReceiveFinishCommand {
  readonly type: 'volume.receive-finish';
  readonly name: string;
}

/** `receive --resume` on another node: that node becomes the receiving one (the volume must be detached). */
export interface VolumeReceiveResumeCommand {
  readonly type: 'volume.receive-resume';
  readonly name: string;
  readonly nodeId: string;
}

/** Give up a receive: the record goes; the caller deletes the volume (full) or reverted it to its base (incremental). */
export interface VolumeReceiveAbortCommand {
  readonly type: 'volume.receive-abort';
  readonly name: string;
}

export type ReceiveCommand = VolumeReceiveStartCommand | VolumeReceiveProgressCommand | VolumeReceiveResumeCommand | VolumeReceiveFinishCommand | VolumeReceiveAbortCommand;

/** Bounds what a Raft entry carries for one volume. */
export const MAX_RECEIVED_SNAPSHOTS = 1024;
const MAX_ID_LENGTH = 255;

/** The ExportClient connection id of a receive's own writer: the one client a receiving volume admits. */
export function receiveWriterConnectionId(volumeName: string): string {
  return `receive:${volumeName}`;
}

export function assertNotReceiving(volume: VolumeRecord): void {
  if (volume.receive !== undefined) {
    throw new PlinthError('RECEIVE_CONFLICT', `volume ${volume.name} is being received (chunk ${volume.receive.progress.nextChunk} of ${volume.receive.source.totalChunkCount}); it is served once the receive completes`, {
      name: volume.name,
    });
  }
}

/**
 * volume.attach of a receiving volume: only the receiving node may attach it
 * (the receive's own writer); every other attach, and so every NBD or iSCSI
 * client elsewhere, is refused by the state machine itself.
 */
export function assertReceiveAttach(volume: VolumeRecord, nodeId: string): void {
  if (volume.receive !== undefined && volume.receive.nodeId !== nodeId) assertNotReceiving(volume);
}

/** The local snapshot name whose source id is `sourceSnapshotId` (and which still exists), if any. */
export function findReceivedSnapshot(volume: VolumeRecord, sourceSnapshotId: string): string | undefined {
  const names = new Set((volume.snapshots ?? []).map((snapshot) => snapshot.name));
  return (volume.receivedSnapshots ?? []).find((entry) => entry.sourceSnapshotId === sourceSnapshotId && names.has(entry.name))?.name;
}

export function startReceive(state: ClusterState, command: VolumeReceiveStartCommand): VolumeApplied {
  const volume = requireVolume(state, command.name);
  requireNode(state, command.nodeId);
  assertTimestamp(command.at, 'at');
  assertSource(command.source);
  assertNotReceiving(volume);
  if (volume.attachedTo !== null) {
    throw new PlinthError('VOLUME_ATTACHED', `volume ${volume.name} is attached to node ${volume.attachedTo}; detach it before receiving into it`, {
      name: volume.name,
      attachedTo: volume.attachedTo,
    });
  }
  let baseSnapshotName: string | null = null;
  if (command.source.baseSourceSnapshotId !== null) {
    baseSnapshotName = findReceivedSnapshot(volume, command.source.baseSourceSnapshotId) ?? null;
    if (baseSnapshotName === null) {
      throw new PlinthError('RECEIVE_CONFLICT', `volume ${volume.name} has no snapshot received as source snapshot ${command.source.baseSourceSnapshotId}: send a full stream, or an incremental against a snapshot it received`, {
        name: volume.name,
        baseSourceSnapshotId: command.source.baseSourceSnapshotId,
      });
    }
  }
  if ((volume.snapshots ?? []).some((snapshot) => snapshot.name === command.source.snapshotName)) {
    throw new PlinthError('SNAPSHOT_EXISTS', `volume ${volume.name} already has a snapshot ${JSON.stringify(command.source.snapshotName)}`, { name: volume.name });
  }
  const receive: ReceiveRecord = {
    nodeId: command.nodeId,
    source: command.source,
    progress: { nextChunk: 0, chainDigestHex: '', minOffsetBytes: 0 },
    startedAt: command.at,
    baseSnapshotName,
  };
  return applied(state, { ...volume, receive });
}

export function recordReceiveProgress(state: ClusterState, command: VolumeReceiveProgressCommand): VolumeApplied {
  const volume = requireVolume(state, command.name);
  const receive = requireReceive(volume);
  const { nextChunk, chainDigestHex, minOffsetBytes } = command;
  if (!Number.isSafeInteger(nextChunk) || nextChunk < receive.progress.nextChunk || nextChunk > receive.source.totalChunkCount) {
    throw new PlinthError('INVALID_ARGUMENT', `volume ${volume.name}: receive progress must move forward within ${receive.source.totalChunkCount} chunks (at ${receive.progress.nextChunk}, got ${nextChunk})`, {
      name: volume.name,
    });
  }
  if (!/^[0-9a-f]{64}$/.test(chainDigestHex) || !Number.isSafeInteger(minOffsetBytes) || minOffsetBytes < 0 || minOffsetBytes > receive.source.volumeSizeBytes) {
    throw new PlinthError('INVALID_ARGUMENT', `volume ${volume.name}: malformed receive progress`, { name: volume.name });
  }
  return applied(state, { ...volume, receive: { ...receive, progress: { nextChunk, chainDigestHex, minOffsetBytes } } });
}

export function resumeReceiveOn(state: ClusterState, command: VolumeReceiveResumeCommand): VolumeApplied {
  const volume = requireVolume(state, command.name);
  const receive = requireReceive(volume);
  requireNode(state, command.nodeId);
  if (volume.attachedTo !== null && volume.attachedTo !== command.nodeId) {
    throw new PlinthError('VOLUME_ATTACHED', `volume ${volume.name} is attached to node ${volume.attachedTo} (the receive there may still run); retry once it is detached`, {
      name: volume.name,
      attachedTo: volume.attachedTo,
    });
  }
  return applied(state, { ...volume, receive: { ...receive, nodeId: command.nodeId } });
}

export function finishReceive(state: ClusterState, command: VolumeReceiveFinishCommand): VolumeApplied {
  const volume = requireVolume(state, command.name);
  const receive = requireReceive(volume);
  const { source } = receive;
  if (receive.progress.nextChunk !== source.totalChunkCount) {
    throw new PlinthError('RECEIVE_CONFLICT', `volume ${volume.name}: the receive is at chunk ${receive.progress.nextChunk} of ${source.totalChunkCount}`, { name: volume.name });
  }
  const snapshots = volume.snapshots ?? [];
  if (!snapshots.some((snapshot) => snapshot.name === source.snapshotName)) {
    throw new PlinthError('SNAPSHOT_NOT_FOUND', `volume ${volume.name}: take snapshot ${source.snapshotName} before finishing the receive`, { name: volume.name });
  }
  const existing = new Set(snapshots.map((snapshot) => snapshot.name));
  const received: ReceivedSnapshot = { name: source.snapshotName, sourceClusterId: source.sourceClusterId, sourceSnapshotId: source.sourceSnapshotId };
  const receivedSnapshots = [...(volume.receivedSnapshots ?? []).filter((entry) => existing.has(entry.name) && entry.name !== received.name), received].slice(-MAX_RECEIVED_SNAPSHOTS);
  const { receive: _done, ...rest } = volume;
  return applied(state, { ...rest, receivedSnapshots });
}

export function abortReceive(state: ClusterState, command: VolumeReceiveAbortCommand): VolumeApplied {
  const volume = requireVolume(state, command.name);
  if (volume.receive === undefined) return { state, volume };
  const { receive: _aborted, ...rest } = volume;
  return applied(state, rest);
}

/** decodeCommand checks only that `create` is an object: its fields are checked before volume.create's own rules run. */
export function assertReceiveCreate(create: unknown): asserts create is NonNullable<VolumeReceiveStartCommand['create']> {
  if (typeof create !== 'object' || create === null) throw badSource('create must be an object');
  const fields = create as Record<string, unknown>;
  const known = new Set(['id', 'sizeBytes', 'replicaCount', 'placement']);
  for (const key of Object.keys(fields)) if (!known.has(key)) throw badSource(`create has an unexpected field "${key}"`);
  if (typeof fields['id'] !== 'string' || typeof fields['sizeBytes'] !== 'number') throw badSource('create needs id (string) and sizeBytes (number)');
  if (fields['replicaCount'] !== undefined && typeof fields['replicaCount'] !== 'number') throw badSource('create.replicaCount must be a number');
  const placement = fields['placement'];
  if (placement !== undefined && !(Array.isArray(placement) && placement.every((nodeId) => typeof nodeId === 'string'))) throw badSource('create.placement must be node ids');
}

function requireReceive(volume: VolumeRecord): ReceiveRecord {
  if (volume.receive === undefined) throw new PlinthError('RECEIVE_CONFLICT', `volume ${volume.name} has no receive in progress`, { name: volume.name });
  return volume.receive;
}

/** decodeCommand checks only that `source` is an object: every field is checked here. */
function assertSource(source: ReceiveSource): void {
  const text = (field: keyof ReceiveSource, value: unknown, allowNull = false): void => {
    if (allowNull && value === null) return;
    if (typeof value !== 'string' || value.length === 0 || value.length > MAX_ID_LENGTH) throw badSource(`${field} must be a string of 1-${MAX_ID_LENGTH} characters`);
  };
  const count = (field: keyof ReceiveSource, value: unknown): void => {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw badSource(`${field} must be a non-negative integer`);
  };
  text('sourceClusterId', source.sourceClusterId);
  text('sourceVolumeId', source.sourceVolumeId);
  text('sourceVolumeName', source.sourceVolumeName);
  text('snapshotName', source.snapshotName);
  text('sourceSnapshotId', source.sourceSnapshotId);
  text('baseSourceSnapshotId', source.baseSourceSnapshotId, true);
  count('totalChunkCount', source.totalChunkCount);
  count('volumeSizeBytes', source.volumeSizeBytes);
  const known = new Set(['sourceClusterId', 'sourceVolumeId', 'sourceVolumeName', 'snapshotName', 'sourceSnapshotId', 'baseSourceSnapshotId', 'totalChunkCount', 'volumeSizeBytes']);
  for (const key of Object.keys(source)) if (!known.has(key)) throw badSource(`unexpected field "${key}"`);
}

function badSource(message: string): PlinthError {
  return new PlinthError('INVALID_ARGUMENT', `malformed command: volume.receive-start: source ${message}`);
}

function applied(state: ClusterState, volume: VolumeRecord): VolumeApplied {
  return { state: withVolume(state, volume), volume };
}
