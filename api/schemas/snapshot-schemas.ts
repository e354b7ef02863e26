/**
 * Issue 8: JSON schemas of the snapshot routes (api/routes/snapshot-routes.ts)
 * with the matching TypeScript types. The view (SnapshotView) is shared
 * through view-schemas.ts so the serializer and the OpenAPI document agree.
 */

import { SNAPSHOT_NAME_PATTERN_SOURCE, SNAPSHOT_NAME_RULE } from '../../daemon/state/snapshot-commands.js';
import { volumeNameSchema } from './request-schemas.js';

export const snapshotNameSchema = {
  type: 'string',
  minLength: 1,
  maxLength: 63,
  pattern: SNAPSHOT_NAME_PATTERN_SOURCE,
  description: `snapshot name: ${SNAPSHOT_NAME_RULE}`,
} as const;

export const snapshotViewSchema = {
  $id: 'SnapshotView',
  type: 'object',
  required: ['id', 'name', 'volume', 'createdAt', 'sizeBytes', 'generation', 'holders', 'space'],
  properties: {
    id: { type: 'string', description: 'the pools\' snapshot id on every holder' },
    name: { type: 'string' },
    volume: { type: 'string' },
    createdAt: { type: 'string', format: 'date-time' },
    sizeBytes: { type: 'integer', minimum: 0, description: 'the volume\'s size when it was taken' },
    generation: { type: 'integer', minimum: 0, description: 'the volume generation it was taken at' },
    holders: { type: 'array', items: { type: 'string' }, description: 'nodes whose pool holds it' },
    groupId: { type: 'string', description: 'set on the snapshots of one group snapshot' },
    space: {
      type: 'object',
      nullable: true,
      description: 'pool space as measured on the answering node when it holds the snapshot; null otherwise',
      required: ['measuredOn', 'exclusiveBytes', 'sharedBytes'],
      properties: {
        measuredOn: { type: 'string' },
        exclusiveBytes: { type: 'integer', minimum: 0, description: 'what deleting it would free on that node' },
        sharedBytes: { type: 'integer', minimum: 0, description: 'extents shared with the volume, other snapshots or clones' },
      },
    },
  },
} as const;

export const snapshotParamsSchema = {
  type: 'object',
  required: ['name', 'snapshot'],
  additionalProperties: false,
  properties: { name: volumeNameSchema, snapshot: snapshotNameSchema },
} as const;

export interface SnapshotParams {
  readonly name: string;
  readonly snapshot: string;
}

export const createSnapshotBodySchema = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: { name: snapshotNameSchema },
} as const;

export interface CreateSnapshotBody {
  readonly name: string;
}

export const createSnapshotGroupBodySchema = {
  type: 'object',
  required: ['name', 'volumes'],
  additionalProperties: false,
  properties: {
    name: snapshotNameSchema,
    volumes: { type: 'array', minItems: 1, maxItems: 16, uniqueItems: true, items: volumeNameSchema, description: 'the volumes of the group (1 to 16)' },
  },
} as const;

export interface CreateSnapshotGroupBody {
  readonly name: string;
  readonly volumes: readonly string[];
}

export const snapshotGroupViewSchema = {
  type: 'object',
  required: ['groupId', 'name', 'snapshots'],
  properties: {
    groupId: { type: 'string' },
    name: { type: 'string' },
    snapshots: { type: 'array', items: { $ref: 'SnapshotView#' } },
  },
} as const;

export const cloneVolumeBodySchema = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: { name: { ...volumeNameSchema, description: `the clone's volume name: ${volumeNameSchema.description}` } },
} as const;

export interface CloneVolumeBody {
  readonly name: string;
}
