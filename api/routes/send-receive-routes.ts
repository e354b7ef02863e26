import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { PlinthError } from '../../common/plinth-error.js';
import type { ReceiveResultView, ReceiveService, ReceiveStatusView } from '../../daemon/snapshots/receive-service.js';
import type { RetentionScheduleService } from '../../daemon/snapshots/retention-schedule-service.js';
import type { SendService } from '../../daemon/snapshots/send-service.js';
import { MAX_SCHEDULE_EVERY_MS, MAX_SCHEDULE_KEEP, MIN_SCHEDULE_EVERY_MS } from '../../daemon/state/snapshot-schedule-commands.js';
import { volumeNameParamsSchema, volumeNameSchema, type VolumeNameParams } from '../schemas/request-schemas.js';
import { snapshotNameSchema, snapshotParamsSchema, type SnapshotParams } from '../schemas/snapshot-schemas.js';
import { commonErrorResponses, errorRef } from '../schemas/view-schemas.js';
import { bearerSecurity } from './route-security.js';

/**
 * Issue 8, copies between clusters and retention (docs/snapshots.md, docs/api.md):
 *   GET    /v1/volumes/{name}/snapshots/{snapshot}/send[?base=SNAP0][&fromChunk=N]  → application/octet-stream
 *   POST   /v1/volumes/{name}/receive[?resume=true][&replicas=N]                    ← application/octet-stream
 *   GET    /v1/volumes/{name}/receive      where a receive stands (next chunk to send)
 *   DELETE /v1/volumes/{name}/receive      give up a resumable receive
 *   GET|PUT|DELETE /v1/volumes/{name}/snapshot-schedule {everyMs, keep}
 * Streams are never buffered: the send body is a Readable pulled as the
 * socket drains, the receive body is the raw request stream (this scope
 * alone parses application/octet-stream, as a stream, so the app's JSON
 * body limit does not apply to it; the stream's own bounds do).
 */
export interface SendReceiveServices {
  readonly send: Pick<SendService, 'open'>;
  readonly receive: Pick<ReceiveService, 'receive' | 'status' | 'abort'>;
  readonly schedules: Pick<RetentionScheduleService, 'get' | 'set'>;
}

const tags = ['send-receive'];
const OCTET_STREAM = 'application/octet-stream';

// Query strings stay strings: the app validates without type coercion (build-api-app.ts), so numbers are patterns here.
interface SendQuery {
  readonly base?: string;
  readonly fromChunk?: string;
}

interface ReceiveQuery {
  readonly resume?: 'true' | 'false';
  readonly replicas?: string;
}

interface ScheduleBody {
  readonly everyMs: number;
  readonly keep: number;
}

const sendQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    base: { ...snapshotNameSchema, description: 'incremental: the earlier snapshot to send the difference to' },
    fromChunk: { type: 'string', pattern: '^[0-9]{1,10}$', description: 'resume: start at this chunk (GET …/receive on the receiver says which)' },
  },
} as const;

const receiveQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    resume: { type: 'string', enum: ['true', 'false'], description: 'continue the receive in progress from its last checkpoint' },
    replicas: { type: 'string', pattern: '^[1-5]$', description: 'replica count (1-5) of a volume a full stream creates' },
  },
} as const;

const scheduleBodySchema = {
  type: 'object',
  required: ['everyMs', 'keep'],
  additionalProperties: false,
  properties: {
    everyMs: { type: 'integer', minimum: MIN_SCHEDULE_EVERY_MS, maximum: MAX_SCHEDULE_EVERY_MS },
    keep: { type: 'integer', minimum: 1, maximum: MAX_SCHEDULE_KEEP },
  },
} as const;

const scheduleViewSchema = {
  type: 'object',
  required: ['volume', 'schedule'],
  properties: {
    volume: volumeNameSchema,
    schedule: { type: 'object', nullable: true, required: ['everyMs', 'keep'], properties: { everyMs: { type: 'integer' }, keep: { type: 'integer' } } },
  },
} as const;

const receiveResultSchema = {
  type: 'object',
  required: ['volume', 'snapshot', 'base', 'chunkCount', 'chunksWritten', 'bytesWritten', 'streamSha256'],
  properties: {
    volume: { type: 'string' }, snapshot: { type: 'string' }, base: { type: 'string', nullable: true },
    chunkCount: { type: 'integer' }, chunksWritten: { type: 'integer' }, bytesWritten: { type: 'integer' }, streamSha256: { type: 'string' },
  },
} as const;

const receiveStatusSchema = {
  type: 'object',
  required: ['volume', 'receiving'],
  properties: {
    volume: { type: 'string' }, receiving: { type: 'boolean' }, snapshot: { type: 'string' }, sourceClusterId: { type: 'string' },
    sourceVolume: { type: 'string' }, incremental: { type: 'boolean' }, nextChunk: { type: 'integer' }, totalChunkCount: { type: 'integer' },
    startedAt: { type: 'string' },
  },
} as const;

export async function registerSendReceiveRoutes(app: FastifyInstance, services: SendReceiveServices): Promise<void> {
  app.get<{ Params: SnapshotParams; Querystring: SendQuery }>('/v1/volumes/:name/snapshots/:snapshot/send', {
    schema: {
      tags, summary: 'Stream a snapshot (full, or incremental against ?base) in the portable send format', security: bearerSecurity,
      params: snapshotParamsSchema, querystring: sendQuerySchema,
      response: { ...commonErrorResponses, 404: errorRef, 409: errorRef },
    },
  }, async (request, reply) => {
    const { name, snapshot } = request.params;
    const { base, fromChunk } = request.query;
    const opened = await services.send.open({ volume: name, snapshot, ...(base === undefined ? {} : { base }), ...(fromChunk === undefined ? {} : { fromChunk: Number(fromChunk) }) });
    reply.header('content-type', OCTET_STREAM);
    reply.header('x-plinth-send-chunks', String(opened.header.totalChunkCount));
    // Pulled as the socket drains (backpressure). The snapshot devices close when the stream ends, or when the
    // connection does (a client gone before the first byte never starts the generator, so its finally never runs).
    reply.raw.once('close', () => opened.close());
    return reply.send(Readable.from(opened.stream, { objectMode: false }));
  });

  await app.register(async (scope) => {
    // Only in this scope: the body arrives as the raw request stream, never buffered.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser(OCTET_STREAM, (_request, payload, done) => done(null, payload));
    scope.post<{ Params: VolumeNameParams; Querystring: ReceiveQuery; Body: unknown }>('/v1/volumes/:name/receive', {
      schema: {
        tags, summary: 'Receive a send stream into volume {name} (full: creates it; incremental: onto the base it received)', security: bearerSecurity,
        params: volumeNameParamsSchema, querystring: receiveQuerySchema,
        response: { 201: receiveResultSchema, ...commonErrorResponses, 404: errorRef, 409: errorRef, 415: errorRef },
      },
    }, async (request, reply): Promise<ReceiveResultView> => {
      if (!isStream(request.body)) throw new PlinthError('UNSUPPORTED_MEDIA_TYPE', `send the stream as the request body with content-type ${OCTET_STREAM}`);
      const { resume, replicas } = request.query;
      const result = await services.receive.receive({ name: request.params.name, resume: resume === 'true', ...(replicas === undefined ? {} : { replicaCount: Number(replicas) }) }, request.body);
      reply.code(201);
      return result;
    });
  });

  app.get<{ Params: VolumeNameParams }>('/v1/volumes/:name/receive', {
    schema: { tags, summary: 'Where a receive into {name} stands: the next chunk a resumed send must start at', security: bearerSecurity, params: volumeNameParamsSchema, response: { 200: receiveStatusSchema, ...commonErrorResponses, 404: errorRef } },
  }, async (request): Promise<ReceiveStatusView> => services.receive.status(request.params.name));

  app.delete<{ Params: VolumeNameParams }>('/v1/volumes/:name/receive', {
    schema: { tags, summary: 'Give up an interrupted receive (full: deletes the volume; incremental: back to its base)', security: bearerSecurity, params: volumeNameParamsSchema, response: { ...commonErrorResponses, 404: errorRef, 409: errorRef } },
  }, async (request, reply) => {
    await services.receive.abort(request.params.name);
    reply.code(204);
  });

  registerScheduleRoutes(app, services);
}

function registerScheduleRoutes(app: FastifyInstance, services: SendReceiveServices): void {
  const path = '/v1/volumes/:name/snapshot-schedule';
  const response = { 200: scheduleViewSchema, ...commonErrorResponses, 404: errorRef };
  app.get<{ Params: VolumeNameParams }>(path, {
    schema: { tags, summary: 'The volume\'s snapshot retention schedule (null: none)', security: bearerSecurity, params: volumeNameParamsSchema, response },
  }, async (request) => services.schedules.get(request.params.name));
  app.put<{ Params: VolumeNameParams; Body: ScheduleBody }>(path, {
    schema: { tags, summary: 'Take auto snapshots every everyMs, keep the newest `keep` (the leader runs it)', security: bearerSecurity, params: volumeNameParamsSchema, body: scheduleBodySchema, response },
  }, async (request) => services.schedules.set(request.params.name, { everyMs: request.body.everyMs, keep: request.body.keep }));
  app.delete<{ Params: VolumeNameParams }>(path, {
    schema: { tags, summary: 'Turn the schedule off (existing auto snapshots stay)', security: bearerSecurity, params: volumeNameParamsSchema, response },
  }, async (request) => services.schedules.set(request.params.name, null));
}

function isStream(body: unknown): body is AsyncIterable<Buffer> {
  return body instanceof Readable;
}
