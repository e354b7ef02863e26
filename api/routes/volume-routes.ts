import type { FastifyInstance, FastifyRequest } from 'fastify';
import { parseSize } from '../../common/sizes.js';
import type { ControlPlane } from '../../daemon/control-plane.js';
import {
  attachVolumeBodySchema,
  createVolumeBodySchema,
  detachVolumeBodySchema,
  resizeVolumeBodySchema,
  volumeChapBodySchema,
  volumeNameParamsSchema,
  type AttachVolumeBody,
  type CreateVolumeBody,
  type DetachVolumeBody,
  type ResizeVolumeBody,
  type VolumeChapBody,
  type VolumeNameParams,
} from '../schemas/request-schemas.js';
import { commonErrorResponses, errorRef } from '../schemas/view-schemas.js';
import { bearerSecurity } from './route-security.js';
import { parseDurationMs } from '../../common/durations.js';

const volumeRef = { $ref: 'VolumeView#' } as const;
const tags = ['volumes'];

/** /v1/volumes… (ARCHITECTURE.md "REST"). Sizes are parsed here, at the edge, with parseSize. */
export function registerVolumeRoutes(app: FastifyInstance, control: ControlPlane): void {
  app.get('/v1/volumes', {
    schema: {
      tags, summary: 'List volumes', security: bearerSecurity,
      response: {
        200: { type: 'object', required: ['volumes'], properties: { volumes: { type: 'array', items: volumeRef } } },
        ...commonErrorResponses,
      },
    },
  }, async () => ({ volumes: await control.listVolumes() }));

  app.post<{ Body: CreateVolumeBody }>('/v1/volumes', {
    schema: {
      tags, summary: 'Create a volume', security: bearerSecurity,
      body: createVolumeBodySchema,
      response: { 201: volumeRef, ...commonErrorResponses, 409: errorRef, 413: errorRef, 415: errorRef, 507: errorRef },
    },
  }, async (request, reply) => {
    const { name, size, replicas, grace } = request.body;
    const sizeBytes = parseSize(size);
    const view = await control.createVolume({
      name,
      sizeBytes,
      ...(replicas === undefined ? {} : { replicaCount: replicas }),
      ...(grace === undefined ? {} : { graceMs: parseDurationMs(grace) }),
    });
    reply.code(201);
    return view;
  });

  app.get<{ Params: VolumeNameParams }>('/v1/volumes/:name', {
    schema: {
      tags, summary: 'Show one volume', security: bearerSecurity,
      params: volumeNameParamsSchema,
      response: { 200: volumeRef, ...commonErrorResponses, 404: errorRef },
    },
  }, async (request) => control.getVolume(request.params.name));

  app.patch<{ Params: VolumeNameParams; Body: ResizeVolumeBody }>('/v1/volumes/:name', {
    schema: {
      tags, summary: 'Grow a volume (shrinking is refused)', security: bearerSecurity,
      params: volumeNameParamsSchema,
      body: resizeVolumeBodySchema,
      response: { 200: volumeRef, ...commonErrorResponses, 404: errorRef, 413: errorRef, 415: errorRef, 507: errorRef },
    },
  }, async (request) => control.resizeVolume(request.params.name, parseSize(request.body.size)));

  app.delete<{ Params: VolumeNameParams }>('/v1/volumes/:name', {
    schema: {
      tags, summary: 'Delete a detached volume', security: bearerSecurity,
      params: volumeNameParamsSchema,
      response: { 204: { type: 'null', description: 'deleted' }, ...commonErrorResponses, 404: errorRef, 409: errorRef },
    },
  }, async (request, reply) => {
    await control.deleteVolume(request.params.name);
    reply.code(204);
  });

  registerAttachRoutes(app, control);
  registerChapRoutes(app, control);
}

/** Per-volume iSCSI CHAP (docs/iscsi.md "CHAP"): set with PUT, clear with DELETE; answers never carry a secret. */
function registerChapRoutes(app: FastifyInstance, control: ControlPlane): void {
  // The body is a VolumeChapRequest as is: the schema admits no other field.
  app.put<{ Params: VolumeNameParams; Body: VolumeChapBody }>('/v1/volumes/:name/chap', {
    schema: {
      tags, summary: 'Set the volume\'s iSCSI CHAP secrets (one-way, or mutual with targetUser/targetSecret)', security: bearerSecurity,
      params: volumeNameParamsSchema,
      body: volumeChapBodySchema,
      response: { 200: volumeRef, ...commonErrorResponses, 404: errorRef, 413: errorRef, 415: errorRef },
    },
  }, async (request) => control.setVolumeChap(request.params.name, request.body));

  app.delete<{ Params: VolumeNameParams }>('/v1/volumes/:name/chap', {
    schema: {
      tags, summary: 'Clear the volume\'s iSCSI CHAP secrets (the cluster-wide ones apply again)', security: bearerSecurity,
      params: volumeNameParamsSchema,
      response: { 200: volumeRef, ...commonErrorResponses, 404: errorRef },
    },
  }, async (request) => control.clearVolumeChap(request.params.name));
}

function registerAttachRoutes(app: FastifyInstance, control: ControlPlane): void {
  app.post<{ Params: VolumeNameParams; Body: AttachVolumeBody }>('/v1/volumes/:name/attach', {
    schema: {
      tags, summary: 'Attach a volume to a node (the node serves it)', security: bearerSecurity,
      params: volumeNameParamsSchema,
      body: attachVolumeBodySchema,
      response: { 200: volumeRef, ...commonErrorResponses, 404: errorRef, 409: errorRef, 413: errorRef, 415: errorRef },
    },
  }, async (request) => {
    const { node, force } = request.body;
    return control.attachVolume(request.params.name, node, force === undefined ? {} : { force });
  });

  app.post<{ Params: VolumeNameParams; Body: DetachVolumeBody }>('/v1/volumes/:name/detach', {
    schema: {
      tags, summary: 'Detach a volume (force disconnects live clients)', security: bearerSecurity,
      params: volumeNameParamsSchema,
      body: detachVolumeBodySchema,
      response: { 200: volumeRef, ...commonErrorResponses, 404: errorRef, 409: errorRef, 413: errorRef, 415: errorRef },
    },
    // Every field is optional, so a bare `curl -X POST …/detach` means "{}".
    preValidation: async (request: FastifyRequest) => {
      if (request.body === undefined || request.body === null) request.body = {};
    },
  }, async (request) => {
    const { force } = request.body;
    return control.detachVolume(request.params.name, force === undefined ? {} : { force });
  });
}
