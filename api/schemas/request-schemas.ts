/**
 * JSON schemas of what clients send, with the matching TypeScript types.
 * Bodies are closed (`additionalProperties: false`) so a typo such as
 * `{"replica": 3}` is refused instead of silently ignored; the app turns
 * Ajv's `removeAdditional` off for the same reason (see build-api-app.ts).
 */

import { VOLUME_NAME_MAX_LENGTH, VOLUME_NAME_PATTERN_SOURCE, VOLUME_NAME_RULE } from '../../common/volume-name.js';

export { VOLUME_NAME_MAX_LENGTH, VOLUME_NAME_RULE };
export const VOLUME_NAME_PATTERN = VOLUME_NAME_PATTERN_SOURCE;

/** Longest size string accepted ("1073741824", "10GiB", "1.5TiB" are far shorter). */
const SIZE_STRING_MAX_LENGTH = 32;
export const MAX_REPLICAS = 5;

export const volumeNameSchema = {
  type: 'string',
  minLength: 1,
  maxLength: VOLUME_NAME_MAX_LENGTH,
  pattern: VOLUME_NAME_PATTERN,
  description: `volume name: ${VOLUME_NAME_RULE}`,
} as const;

export const sizeSchema = {
  description: 'integer bytes, or a string with a binary unit such as "512MiB", "10GiB", "2TiB"',
  oneOf: [
    { type: 'integer', minimum: 0 },
    { type: 'string', minLength: 1, maxLength: SIZE_STRING_MAX_LENGTH },
  ],
} as const;

export type SizeInput = number | string;

export const volumeNameParamsSchema = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: { name: volumeNameSchema },
} as const;

export interface VolumeNameParams {
  readonly name: string;
}

export const createVolumeBodySchema = {
  type: 'object',
  required: ['name', 'size'],
  additionalProperties: false,
  properties: {
    name: volumeNameSchema,
    size: sizeSchema,
    replicas: { type: 'integer', minimum: 1, maximum: MAX_REPLICAS, description: 'replica count (default: the daemon\'s)' },
    grace: {
      description: 'how long a lost replica may stay away before it is rebuilt elsewhere: whole seconds, or a string such as "90s", "10m", "1h" (default 10m)',
      oneOf: [
        { type: 'integer', minimum: 0 },
        { type: 'string', minLength: 1, maxLength: 32 },
      ],
    },
  },
} as const;

export interface CreateVolumeBody {
  readonly name: string;
  readonly size: SizeInput;
  readonly replicas?: number;
  readonly grace?: number | string;
}

export const resizeVolumeBodySchema = {
  type: 'object',
  required: ['size'],
  additionalProperties: false,
  properties: { size: sizeSchema },
} as const;

export interface ResizeVolumeBody {
  readonly size: SizeInput;
}

export const attachVolumeBodySchema = {
  type: 'object',
  required: ['node'],
  additionalProperties: false,
  properties: {
    node: { type: 'string', minLength: 1, maxLength: 128, description: 'id of the node that will serve the volume' },
    force: { type: 'boolean', description: 'take the volume over even if attached elsewhere' },
  },
} as const;

export interface AttachVolumeBody {
  readonly node: string;
  readonly force?: boolean;
}

export const detachVolumeBodySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    force: { type: 'boolean', description: 'disconnect live NBD/iSCSI clients' },
  },
} as const;

export interface DetachVolumeBody {
  readonly force?: boolean;
}

/**
 * `PUT /v1/volumes/{name}/chap`. The daemon checks the rest (12 to 255
 * bytes per secret, pairs complete, target secret unlike the initiator's:
 * daemon/state/volume-chap-commands.ts) so the refusal names the rule.
 */
const chapUserSchema = { type: 'string', minLength: 1, maxLength: 255 } as const;
const chapSecretSchema = { type: 'string', minLength: 1, maxLength: 255 } as const;

export const volumeChapBodySchema = {
  type: 'object',
  required: ['user', 'secret'],
  additionalProperties: false,
  properties: {
    user: { ...chapUserSchema, description: 'CHAP name the initiator logs in with' },
    secret: { ...chapSecretSchema, description: 'CHAP secret of the initiator, 12 to 255 bytes (Windows: 12 to 16); never returned' },
    targetUser: { ...chapUserSchema, description: 'mutual CHAP: the name this target answers with' },
    targetSecret: { ...chapSecretSchema, description: 'mutual CHAP: the target\'s secret, different from `secret`; never returned' },
  },
} as const;

export interface VolumeChapBody {
  readonly user: string;
  readonly secret: string;
  readonly targetUser?: string;
  readonly targetSecret?: string;
}
