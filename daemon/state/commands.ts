import { PlinthError } from '../../common/plinth-error.js';
import type { NodeAddresses } from './cluster-state.js';

/**
 * Commands of the cluster state machine. Plain JSON, so the Raft log of the
 * cluster issue carries them unchanged. Anything nondeterministic (ids,
 * timestamps) is decided by the proposer and travels in the command; apply
 * is a pure function of (state, command).
 */
export interface ClusterInitCommand {
  readonly type: 'cluster.init';
  readonly clusterId: string;
}

export interface NodeRegisterCommand {
  readonly type: 'node.register';
  readonly id: string;
  readonly addresses: NodeAddresses;
}

export interface VolumeCreateCommand {
  readonly type: 'volume.create';
  readonly id: string;
  readonly name: string;
  readonly sizeBytes: number;
  /** Absent: min(3, node count), decided at apply time from the committed state. */
  readonly replicaCount?: number;
  readonly createdAt: string;
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

export interface VolumeAttachCommand {
  readonly type: 'volume.attach';
  readonly name: string;
  readonly nodeId: string;
  /** Take the volume over from another owner (still bumps the generation). */
  readonly force?: boolean;
}

export interface VolumeDetachCommand {
  readonly type: 'volume.detach';
  readonly name: string;
}

export type Command =
  | ClusterInitCommand
  | NodeRegisterCommand
  | VolumeCreateCommand
  | VolumeResizeCommand
  | VolumeDeleteCommand
  | VolumeAttachCommand
  | VolumeDetachCommand;

export type CommandType = Command['type'];

const COMMAND_FIELDS: Readonly<Record<CommandType, Readonly<Record<string, 'string' | 'number' | 'boolean' | 'object'>>>> = {
  'cluster.init': { clusterId: 'string' },
  'node.register': { id: 'string', addresses: 'object' },
  'volume.create': { id: 'string', name: 'string', sizeBytes: 'number', replicaCount: 'number', createdAt: 'string' },
  'volume.resize': { name: 'string', sizeBytes: 'number' },
  'volume.delete': { name: 'string' },
  'volume.attach': { name: 'string', nodeId: 'string', force: 'boolean' },
  'volume.detach': { name: 'string' },
};

const OPTIONAL_FIELDS: ReadonlySet<string> = new Set(['replicaCount', 'force']);

/**
 * Check the shape of a command read back from storage (or, later, off the
 * wire). Semantic checks (names, sizes, references) stay in applyCommand.
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
  for (const [field, kind] of Object.entries(fields)) {
    const fieldValue = record[field];
    if (fieldValue === undefined && OPTIONAL_FIELDS.has(field)) continue;
    if (typeof fieldValue !== kind || fieldValue === null) throw malformed(`${String(type)}: field "${field}" must be a ${kind}`);
  }
  // Every field was just checked against the table for its type.
  return record as unknown as Command;
}

function malformed(message: string): PlinthError {
  return new PlinthError('INVALID_ARGUMENT', `malformed command: ${message}`);
}
