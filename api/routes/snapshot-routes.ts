import type { FastifyInstance } from 'fastify';
import { PlinthError } from '../../common/plinth-error.js';
import type { ControlPlane } from '../../daemon/control-plane.js';
import { volumeNameParamsSchema, type VolumeNameParams } from '../schemas/request-schemas.js';
import {
  cloneVolumeBodySchema,
  createSnapshotBodySchema,
  createSnapshotGroupBodySchema,
  snapshotGroupViewSchema,
  type CreateSnapshotGroupBody,
  snapshotParamsSchema,
  type CloneVolumeBody,
  type CreateSnapshotBody,
  type SnapshotParams,
} from '../schemas/snapshot-schemas.js';
import { commonErrorResponses, errorRef } from '../schemas/view-schemas.js';
import { bearerSecurity } from './route-security.js';

const snapshotRef = { $ref: 'SnapshotView#' } as const;
const volumeRef = { $ref: 'VolumeView#' } as const;
const tags = ['snapshots'];

/**
 * /v1/volumes/{name}/snapshots… (ARCHITECTURE "REST"; issue 8,
 * docs/snapshots.md). Any node answers; the daemon takes the snapshot on the
 * volume's owner when it is attached.
 */
export function registerSnapshotRoutes(app: FastifyInstance, control: ControlPlane): void {
  const snapshots = (): Required<Pick<ControlPlane, 'listSnapshots' | 'createSnapshot' | 'deleteSnapshot' | 'cloneVolume' | 'revertVolume'>> => {
    const { listSnapshots, createSnapshot, deleteSnapshot, cloneVolume, revertVolume } = control;
    if (listSnapshots === undefined || createSnapshot === undefined || deleteSnapshot === undefined || cloneVolume === undefined || revertVolume === undefined) {
      throw new PlinthError('NOT_SUPPORTED', 'this control plane has no snapshots');
    }
    return {
      listSnapshots: listSnapshots.bind(control),
      createSnapshot: createSnapshot.bind(control),
      deleteSnapshot: deleteSnapshot.bind(control),
      cloneVolume: cloneVolume.bind(control),
      revertVolume: revertVolume.bind(control),
    };
  };

  app.get<{ Params: VolumeNameParams }>('/v1/volumes/:name/snapshots', {
    schema: {
      tags, summary: 'List a volume\'s snapshots (oldest first)', security: bearerSecurity,
      params: volumeNameParamsSchema,
      response: {
        200: { type: 'object', required: ['snapshots'], properties: { snapshots: { type: 'array', items: snapshotRef } } },
        ...commonErrorResponses, 404: errorRef,
      },
    },
  }, async (request) => ({ snapshots: await snapshots().listSnapshots(request.params.name) }));

  app.post<{ Params: VolumeNameParams; Body: CreateSnapshotBody }>('/v1/volumes/:name/snapshots', {
    schema: {
      tags, summary: 'Take a crash-consistent snapshot on every in-sync replica', security: bearerSecurity,
      params: volumeNameParamsSchema,
      body: createSnapshotBodySchema,
      response: { 201: snapshotRef, ...commonErrorResponses, 404: errorRef, 409: errorRef, 413: errorRef, 415: errorRef, 507: errorRef },
    },
  }, async (request, reply) => {
    const view = await snapshots().createSnapshot(request.params.name, request.body.name);
    reply.code(201);
    return view;
  });

  app.post<{ Body: CreateSnapshotGroupBody }>('/v1/snapshot-groups', {
    schema: {
      tags, summary: 'Take one consistent snapshot across several volumes (every owner pauses first)', security: bearerSecurity,
      body: createSnapshotGroupBodySchema,
      response: { 201: snapshotGroupViewSchema, ...commonErrorResponses, 404: errorRef, 409: errorRef, 413: errorRef, 415: errorRef, 507: errorRef },
    },
  }, async (request, reply) => {
    const create = control.createSnapshotGroup;
    if (create === undefined) throw new PlinthError('NOT_SUPPORTED', 'this control plane has no group snapshots');
    const view = await create.call(control, request.body.name, request.body.volumes);
    reply.code(201);
    return view;
  });

  app.get<{ Params: SnapshotParams }>('/v1/volumes/:name/snapshots/:snapshot', {
    schema: {
      tags, summary: 'Show one snapshot', security: bearerSecurity,
      params: snapshotParamsSchema,
      response: { 200: snapshotRef, ...commonErrorResponses, 404: errorRef },
    },
  }, async (request) => {
    const { name, snapshot } = request.params;
    const found = (await snapshots().listSnapshots(name)).find((view) => view.name === snapshot);
    if (found === undefined) throw new PlinthError('SNAPSHOT_NOT_FOUND', `volume ${name} has no snapshot ${JSON.stringify(snapshot)}`, { name, snapshot });
    return found;
  });

  app.delete<{ Params: SnapshotParams }>('/v1/volumes/:name/snapshots/:snapshot', {
    schema: {
      tags, summary: 'Delete a snapshot (every holder frees its space)', security: bearerSecurity,
      params: snapshotParamsSchema,
      response: { 204: { type: 'null', description: 'deleted' }, ...commonErrorResponses, 404: errorRef },
    },
  }, async (request, reply) => {
    await snapshots().deleteSnapshot(request.params.name, request.params.snapshot);
    reply.code(204);
  });

  app.post<{ Params: SnapshotParams; Body: CloneVolumeBody }>('/v1/volumes/:name/snapshots/:snapshot/clone', {
    schema: {
      tags, summary: 'Create a writable volume from a snapshot (no data copied)', security: bearerSecurity,
      params: snapshotParamsSchema,
      body: cloneVolumeBodySchema,
      response: { 201: volumeRef, ...commonErrorResponses, 404: errorRef, 409: errorRef, 413: errorRef, 415: errorRef, 507: errorRef },
    },
  }, async (request, reply) => {
    const view = await snapshots().cloneVolume(request.params.name, request.params.snapshot, request.body.name);
    reply.code(201);
    return view;
  });

  app.post<{ Params: SnapshotParams }>('/v1/volumes/:name/snapshots/:snapshot/revert', {
    schema: {
      tags, summary: 'Revert a detached volume to a snapshot', security: bearerSecurity,
      params: snapshotParamsSchema,
      response: { 200: volumeRef, ...commonErrorResponses, 404: errorRef, 409: errorRef },
    },
  }, async (request) => snapshots().revertVolume(request.params.name, request.params.snapshot));
}
