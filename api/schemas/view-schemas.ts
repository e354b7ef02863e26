import { snapshotViewSchema } from './snapshot-schemas.js';

/**
 * JSON schemas of the views the REST API returns (daemon/control-plane.ts).
 * Registered once with `app.addSchema` and referenced as `{ $ref: 'VolumeView#' }`
 * so the serializer (fast-json-stringify) and the OpenAPI document share one
 * definition. Keep them field-for-field in step with the TypeScript interfaces:
 * the serializer drops any property a schema does not list.
 */

export { snapshotViewSchema };

export const replicaViewSchema = {
  $id: 'ReplicaView',
  type: 'object',
  required: ['nodeId', 'state'],
  properties: {
    nodeId: { type: 'string' },
    state: { type: 'string', enum: ['in-sync', 'rebuilding', 'faulted'] },
    dataGeneration: { type: 'integer', minimum: 0, description: 'latest volume generation whose acknowledged writes this replica holds (0: unknown)' },
    rebuild: {
      type: 'object',
      required: ['copiedBytes', 'totalBytes', 'done'],
      properties: {
        copiedBytes: { type: 'integer', minimum: 0 },
        totalBytes: { type: 'integer', minimum: 0 },
        done: { type: 'boolean' },
      },
    },
  },
} as const;

export const volumeViewSchema = {
  $id: 'VolumeView',
  type: 'object',
  required: [
    'id', 'name', 'sizeBytes', 'replicaCount', 'createdAt', 'attachedTo',
    'generation', 'state', 'allocatedBytes', 'replicas', 'connections', 'graceMs', 'chap',
  ],
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    sizeBytes: { type: 'integer', minimum: 0 },
    replicaCount: { type: 'integer', minimum: 1 },
    createdAt: { type: 'string', format: 'date-time' },
    attachedTo: { type: 'string', nullable: true, description: 'node serving the volume; null when detached' },
    generation: { type: 'integer', minimum: 0 },
    state: { type: 'string', enum: ['healthy', 'degraded', 'faulted', 'receiving'] },
    allocatedBytes: { type: 'integer', minimum: 0, description: 'pool space used (thin provisioning)' },
    replicas: { type: 'array', items: { $ref: 'ReplicaView#' } },
    connections: { type: 'integer', minimum: 0, description: 'live NBD/iSCSI connections on the owner' },
    graceMs: { type: 'integer', minimum: 0, description: 'how long a lost replica may stay away before it is rebuilt elsewhere' },
    chap: {
      type: 'object',
      nullable: true,
      description: 'per-volume iSCSI CHAP (secrets are never shown); null: the cluster-wide settings apply',
      required: ['user', 'mutual'],
      properties: {
        user: { type: 'string' },
        mutual: { type: 'boolean', description: 'the target also authenticates itself to the initiator' },
      },
    },
    snapshots: { type: 'array', items: { type: 'string' }, description: 'names of the volume\'s snapshots, oldest first (absent: none)' },
    clonedFrom: {
      type: 'object',
      description: 'set on a clone: the snapshot it was made from',
      required: ['volumeId', 'snapshotId'],
      properties: { volumeId: { type: 'string' }, snapshotId: { type: 'string' } },
    },
  },
} as const;

export const diskViewSchema = {
  $id: 'DiskView',
  type: 'object',
  required: ['id', 'path', 'kind', 'capacityBytes', 'usedBytes', 'extentSizeBytes'],
  properties: {
    id: { type: 'string' },
    path: { type: 'string' },
    kind: { type: 'string', enum: ['file', 'block'] },
    capacityBytes: { type: 'integer', minimum: 0 },
    usedBytes: { type: 'integer', minimum: 0 },
    extentSizeBytes: { type: 'integer', minimum: 0 },
  },
} as const;

export const nodeViewSchema = {
  $id: 'NodeView',
  type: 'object',
  required: ['id', 'state', 'leader', 'addresses', 'labels', 'disks', 'capacityBytes', 'usedBytes'],
  properties: {
    id: { type: 'string' },
    state: { type: 'string', enum: ['up', 'down'] },
    leader: { type: 'boolean' },
    addresses: {
      type: 'object',
      required: ['api', 'peer', 'nbd', 'iscsi'],
      properties: {
        api: { type: 'string' },
        peer: { type: 'string' },
        nbd: { type: 'string' },
        iscsi: { type: 'string' },
      },
    },
    labels: {
      type: 'object',
      description: 'failure-domain labels (only those set)',
      properties: { zone: { type: 'string' }, rack: { type: 'string' } },
      additionalProperties: false,
    },
    disks: { type: 'array', items: { $ref: 'DiskView#' } },
    capacityBytes: { type: 'integer', minimum: 0 },
    usedBytes: { type: 'integer', minimum: 0 },
    drain: {
      type: 'object',
      description: 'present while the node is draining (node drain); done when no replica and no attachment is left',
      required: ['since', 'replicasLeft', 'attachedVolumes', 'blocking', 'done'],
      properties: {
        since: { type: 'string' },
        replicasLeft: { type: 'integer', minimum: 0 },
        attachedVolumes: { type: 'array', items: { type: 'string' } },
        blocking: {
          type: 'array',
          items: { type: 'object', required: ['volume', 'reason'], properties: { volume: { type: 'string' }, reason: { type: 'string' } } },
        },
        done: { type: 'boolean' },
      },
    },
  },
} as const;

export const clusterViewSchema = {
  $id: 'ClusterView',
  type: 'object',
  required: ['clusterId', 'leaderId', 'nodeCount', 'volumeCount', 'capacityBytes', 'usedBytes', 'version'],
  properties: {
    clusterId: { type: 'string' },
    leaderId: { type: 'string', nullable: true },
    nodeCount: { type: 'integer', minimum: 0 },
    volumeCount: { type: 'integer', minimum: 0 },
    capacityBytes: { type: 'integer', minimum: 0 },
    usedBytes: { type: 'integer', minimum: 0 },
    version: { type: 'string' },
  },
} as const;

export const readinessSchema = {
  $id: 'Readiness',
  type: 'object',
  required: ['ready', 'reasons'],
  properties: {
    ready: { type: 'boolean' },
    reasons: { type: 'array', items: { type: 'string' } },
  },
} as const;

/** The one error shape of the API: {"error": {"code", "message", "details"?}}. */
export const errorBodySchema = {
  $id: 'ErrorBody',
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string', description: 'stable PlinthError code, e.g. VOLUME_NOT_FOUND' },
        message: { type: 'string' },
        details: { type: 'object', additionalProperties: true },
      },
    },
  },
} as const;

/** In dependency order: a schema's $refs are registered before it. */
export const sharedSchemas = [
  replicaViewSchema,
  volumeViewSchema,
  snapshotViewSchema,
  diskViewSchema,
  nodeViewSchema,
  clusterViewSchema,
  readinessSchema,
  errorBodySchema,
] as const;

export const errorRef = { $ref: 'ErrorBody#' } as const;

/** Error responses every authenticated /v1 route can give, for the OpenAPI document. */
export const commonErrorResponses = {
  400: errorRef,
  401: errorRef,
  500: errorRef,
  503: errorRef,
  504: errorRef,
} as const;
