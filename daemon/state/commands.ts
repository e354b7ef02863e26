import { decodeReservationImage } from '../../blockdev/iscsi/scsi/scsi-reservation-image.js';
import { isPlinthError, PlinthError } from '../../common/plinth-error.js';
import type { NodeAddresses, NodeLabels } from './cluster-state.js';
import type { VolumeScsiReservationsCommand } from './scsi-reservation-commands.js';
import type { VolumeChapCommand } from './volume-chap-commands.js';
import type { SnapshotCommand } from './snapshot-commands.js';
import type { ReceiveCommand } from './receive-commands.js';
import type { VolumeSnapshotScheduleCommand } from './snapshot-schedule-commands.js';

/**
 * Commands of the cluster state machine. Plain JSON, carried unchanged in
 * Raft entries. Anything nondeterministic (ids, timestamps, placement) is
 * decided by the proposer and travels in the command; apply is a pure
 * function of (state, command).
 */
export interface ClusterInitCommand {
  readonly type: 'cluster.init';
  readonly clusterId: string;
}

/** Adds a node (state up) or, for a member, updates its addresses and labels. */
export interface NodeJoinCommand {
  readonly type: 'node.join';
  readonly nodeId: string;
  readonly addresses: NodeAddresses;
  readonly labels?: NodeLabels;
  readonly joinedAt: string;
}

/** Refused while the node holds the last in-sync replica of a volume. */
export interface NodeRemoveCommand {
  readonly type: 'node.remove';
  readonly nodeId: string;
}

/** Proposed by the leader from Raft heartbeats (issue 4: liveness from heartbeats). */
export interface NodeDownCommand {
  readonly type: 'node.down';
  readonly nodeId: string;
  readonly at: string;
}

export interface NodeUpCommand {
  readonly type: 'node.up';
  readonly nodeId: string;
  readonly at: string;
}

export interface NodeCapacityCommand {
  readonly type: 'node.capacity';
  readonly nodeId: string;
  readonly capacityBytes: number;
  readonly freeBytes: number;
  readonly diskCount: number;
  readonly at: string;
}

/**
 * `node drain ID` (draining: true) and `node undrain ID` (false), issue 4
 * "Drain". Idempotent: draining a draining node keeps its first `at`.
 */
export interface NodeDrainCommand {
  readonly type: 'node.drain';
  readonly nodeId: string;
  readonly draining: boolean;
  readonly at: string;
}

export interface VolumeCreateCommand {
  readonly type: 'volume.create';
  readonly id: string;
  readonly name: string;
  readonly sizeBytes: number;
  /** Absent: min(3, node count), decided at apply time from the committed state. */
  readonly replicaCount?: number;
  readonly createdAt: string;
  /**
   * Node ids chosen by the proposer with the scheduler (placeReplicas); one
   * per replica. Absent: the first node ids in sorted order (tests, legacy).
   */
  readonly placement?: readonly string[];
  /** Absent: DEFAULT_GRACE_MS. */
  readonly graceMs?: number;
}

export interface VolumeResizeCommand {
  readonly type: 'volume.resize';
  readonly name: string;
  readonly sizeBytes: number;
}

export interface VolumeDeleteCommand {
  readonly type: 'volume.delete';
  readonly name: string;
}

/**
 * Makes nodeId the owner with a new, higher generation (invariant 3).
 * Refused with VOLUME_ATTACHED while another owner that is up holds it,
 * unless force. With expectedGeneration, refused with FENCED unless the
 * volume is still at that generation (compare-and-set for failover).
 * Re-attaching to the current owner without force changes nothing.
 */
export interface VolumeAttachCommand {
  readonly type: 'volume.attach';
  readonly name: string;
  readonly nodeId: string;
  readonly force?: boolean;
  readonly expectedGeneration?: number;
}

export interface VolumeDetachCommand {
  readonly type: 'volume.detach';
  readonly name: string;
}

/**
 * Replica state changes from the owner's volume controller. `generation`
 * must equal the volume's current generation: a former owner is fenced
 * (FENCED). Invariant 2: fault is how a replica leaves the in-sync set.
 */
export interface ReplicaFaultCommand {
  readonly type: 'replica.fault';
  readonly name: string;
  readonly nodeId: string;
  readonly generation: number;
  readonly at: string;
  /**
   * Delta resync (issue 4): node id of an in-sync replica → a dirty marker it
   * handed out before the first write the faulted replica missed. Absent in
   * old entries: the replica is rebuilt by a full copy.
   */
  readonly resyncMarkers?: Readonly<Record<string, number>>;
}

export interface ReplicaRebuildingCommand {
  readonly type: 'replica.rebuilding';
  readonly name: string;
  readonly nodeId: string;
  readonly generation: number;
  readonly at: string;
}

export interface ReplicaInSyncCommand {
  readonly type: 'replica.in-sync';
  readonly name: string;
  readonly nodeId: string;
  readonly generation: number;
  readonly at: string;
}

/** A new replica on nodeId, in state rebuilding (it holds no data yet). */
export interface ReplicaAddCommand {
  readonly type: 'replica.add';
  readonly name: string;
  readonly nodeId: string;
  readonly at: string;
}

/** Refused when it would leave the volume without an in-sync replica. */
export interface ReplicaRemoveCommand {
  readonly type: 'replica.remove';
  readonly name: string;
  readonly nodeId: string;
}

export type Command =
  | ClusterInitCommand
  | NodeJoinCommand
  | NodeRemoveCommand
  | NodeDownCommand
  | NodeUpCommand
  | NodeCapacityCommand
  | NodeDrainCommand
  | VolumeCreateCommand
  | VolumeResizeCommand
  | VolumeDeleteCommand
  | VolumeAttachCommand
  | VolumeDetachCommand
  | ReplicaFaultCommand
  | ReplicaRebuildingCommand
  | ReplicaInSyncCommand
  | ReplicaAddCommand
  | ReplicaRemoveCommand
  | VolumeScsiReservationsCommand
  | VolumeChapCommand
  | SnapshotCommand
  | VolumeSnapshotScheduleCommand
  | ReceiveCommand;

export type CommandType = Command['type'];

type FieldKind = 'string' | 'number' | 'boolean' | 'object' | 'string[]';
/** A trailing '?' marks an optional field. */
type FieldTable = Readonly<Record<string, FieldKind | `${FieldKind}?`>>;

const REPLICA_FIELDS: FieldTable = { name: 'string', nodeId: 'string', generation: 'number', at: 'string' };

const COMMAND_FIELDS: Readonly<Record<CommandType, FieldTable>> = {
  'cluster.init': { clusterId: 'string' },
  'node.join': { nodeId: 'string', addresses: 'object', labels: 'object?', joinedAt: 'string' },
  'node.remove': { nodeId: 'string' },
  'node.down': { nodeId: 'string', at: 'string' },
  'node.up': { nodeId: 'string', at: 'string' },
  'node.capacity': { nodeId: 'string', capacityBytes: 'number', freeBytes: 'number', diskCount: 'number', at: 'string' },
  'node.drain': { nodeId: 'string', draining: 'boolean', at: 'string' },
  'volume.create': {
    id: 'string',
    name: 'string',
    sizeBytes: 'number',
    replicaCount: 'number?',
    createdAt: 'string',
    placement: 'string[]?',
    graceMs: 'number?',
  },
  'volume.resize': { name: 'string', sizeBytes: 'number' },
  'volume.delete': { name: 'string' },
  'volume.attach': { name: 'string', nodeId: 'string', force: 'boolean?', expectedGeneration: 'number?' },
  'volume.detach': { name: 'string' },
  'replica.fault': { ...REPLICA_FIELDS, resyncMarkers: 'object?' },
  'replica.rebuilding': REPLICA_FIELDS,
  'replica.in-sync': REPLICA_FIELDS,
  'replica.add': { name: 'string', nodeId: 'string', at: 'string' },
  'replica.remove': { name: 'string', nodeId: 'string' },
  'volume.scsi-reservations': { name: 'string', nodeId: 'string', generation: 'number', image: 'object' },
  'volume.chap': { name: 'string', user: 'string?', secret: 'string?', targetUser: 'string?', targetSecret: 'string?' },
  // Issue 8 (snapshot-commands.ts).
  'snapshot.create': {
    name: 'string',
    snapshotId: 'string',
    snapshotName: 'string',
    createdAt: 'string',
    generation: 'number',
    holders: 'string[]',
    groupId: 'string?',
  },
  'snapshot.delete': { name: 'string', snapshotName: 'string' },
  'volume.clone': { name: 'string', snapshotName: 'string', cloneId: 'string', cloneName: 'string', createdAt: 'string', holders: 'string[]' },
  'volume.revert': { name: 'string', snapshotName: 'string', generation: 'number', at: 'string' },
  'snapshot.holder-add': { name: 'string', snapshotName: 'string', nodeId: 'string' },
  // Issue 8 send/receive and retention (receive-commands.ts, snapshot-schedule-commands.ts).
  'volume.snapshot-schedule': { name: 'string', everyMs: 'number?', keep: 'number?' },
  'volume.receive-start': { name: 'string', nodeId: 'string', at: 'string', source: 'object', create: 'object?' },
  'volume.receive-resume': { name: 'string', nodeId: 'string' },
  'volume.receive-progress': { name: 'string', nextChunk: 'number', chainDigestHex: 'string', minOffsetBytes: 'number' },
  'volume.receive-finish': { name: 'string' },
  'volume.receive-abort': { name: 'string' },
};

/**
 * Check the shape of a command read back from the Raft log or off the wire.
 * Semantic checks (names, sizes, references) stay in applyCommand.
 */
export function decodeCommand(value: unknown): Command {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw malformed('a command must be a JSON object');
  }
  const record = value as Record<string, unknown>;
  const type = record['type'];
  const fields = typeof type === 'string' && Object.hasOwn(COMMAND_FIELDS, type) ? COMMAND_FIELDS[type as CommandType] : undefined;
  if (fields === undefined) throw malformed(`unknown command type ${JSON.stringify(type)}`);
  for (const key of Object.keys(record)) {
    if (key !== 'type' && !Object.hasOwn(fields, key)) throw malformed(`${String(type)}: unexpected field "${key}"`);
  }
  for (const [field, spec] of Object.entries(fields)) {
    const optional = spec.endsWith('?');
    const kind = (optional ? spec.slice(0, -1) : spec) as FieldKind;
    const fieldValue = record[field];
    if (fieldValue === undefined && optional) continue;
    if (!hasKind(fieldValue, kind)) throw malformed(`${String(type)}: field "${field}" must be a ${kind}`);
  }
  if (type === 'volume.scsi-reservations') assertReservationImage(record['image']);
  // Every field was just checked against the table for its type.
  return record as unknown as Command;
}

/**
 * A Raft entry: a command's JSON, optionally with envelope fields beside its
 * own. `requestId` names the control operation that proposed it (REST
 * x-request-id; docs/operations.md "Finding one operation in the logs"). It
 * is for logs only: apply never sees it. Optional, so entries and snapshots
 * written before it existed decode unchanged.
 */
export interface CommandEntry {
  readonly command: Command;
  readonly requestId?: string;
}

const ENVELOPE_REQUEST_ID = 'requestId';
/** Same bound as the REST x-request-id (api/request-id.ts). */
const MAX_REQUEST_ID_LENGTH = 128;

export function decodeCommandEntry(value: unknown): CommandEntry {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || !Object.hasOwn(value, ENVELOPE_REQUEST_ID)) {
    return { command: decodeCommand(value) };
  }
  const { [ENVELOPE_REQUEST_ID]: requestId, ...command } = value as Record<string, unknown>;
  if (typeof requestId !== 'string' || requestId.length === 0 || requestId.length > MAX_REQUEST_ID_LENGTH) {
    throw malformed(`envelope field "${ENVELOPE_REQUEST_ID}" must be a string of 1-${MAX_REQUEST_ID_LENGTH} characters`);
  }
  return { command: decodeCommand(command), requestId };
}

/** The entry's JSON: the command's fields, and the envelope's when present. */
export function commandEntryJson(entry: CommandEntry): Record<string, unknown> {
  return entry.requestId === undefined ? { ...entry.command } : { ...entry.command, [ENVELOPE_REQUEST_ID]: entry.requestId };
}

/** The one command with a nested document: every field of the image is checked too. */
function assertReservationImage(image: unknown): void {
  try {
    decodeReservationImage(image);
  } catch (error) {
    if (isPlinthError(error)) throw malformed(`volume.scsi-reservations: ${error.message}`);
    throw error;
  }
}

function hasKind(value: unknown, kind: FieldKind): boolean {
  if (kind === 'string[]') return Array.isArray(value) && value.every((item) => typeof item === 'string');
  if (kind === 'object') return typeof value === 'object' && value !== null && !Array.isArray(value);
  return typeof value === kind;
}

function malformed(message: string): PlinthError {
  return new PlinthError('INVALID_ARGUMENT', `malformed command: ${message}`);
}
