import type { ClusterView, NodeView, Readiness, SnapshotGroupView, SnapshotView, VolumeChapRequest, VolumeView } from '../../daemon/control-plane.js';
import { PlinthApiError, PlinthConnectionError } from './plinth-api-error.js';
import {
  decodeApiError,
  decodeClientCertificate,
  decodeCluster,
  decodeHealth,
  decodeJoinToken,
  decodeNode,
  decodeNodeList,
  decodeReadiness,
  decodeSnapshot,
  decodeSnapshotGroup,
  decodeSnapshotList,
  decodeVolume,
  decodeVolumeList,
  type ClientCertificateFiles,
} from './response-decoding.js';
import { dispatcherTrusting, tlsAdvice, type FetchDispatcher } from './tls-dispatcher.js';
import { decodeReceiveResult, decodeReceiveStatus, decodeSnapshotSchedule } from './send-receive-decoding.js';
import type { ReceiveResultView, ReceiveStatusView } from '../../daemon/snapshots/receive-service.js';
import type { SnapshotScheduleView } from '../../daemon/snapshots/retention-schedule-service.js';

export { PlinthApiError, PlinthConnectionError } from './plinth-api-error.js';
export type { ClientCertificateFiles } from './response-decoding.js';

export interface PlinthClientOptions {
  /** e.g. http://127.0.0.1:9700 */
  readonly baseUrl: string;
  readonly token: string;
  /** Per-request deadline, connect through last byte. */
  readonly timeoutMs?: number;
  /** Largest response body accepted (a limit on everything). */
  readonly maxResponseBytes?: number;
  /** PEM of the CA to trust for an https:// baseUrl (a TLS cluster's `<data-dir>/tls/ca.crt`). */
  readonly ca?: string;
  /**
   * Sent as x-request-id on every request, so the daemons' logs of this
   * client's operations share one id (the CLI: a fresh UUID per invocation).
   */
  readonly requestId?: string;
}

/** `support bundle`: the archive and each node's status (from the response header). */
export interface SupportBundleDownload {
  readonly archive: Buffer;
  readonly nodes: readonly { readonly nodeId: string; readonly status: string }[];
}

export interface CreateVolumeInput {
  readonly name: string;
  /** Bytes, or a binary-unit string such as "10GiB" (the daemon parses it). */
  readonly size: number | string;
  readonly replicas?: number;
  /** Whole seconds, or a string such as "90s", "10m" (the daemon parses it). */
  readonly grace?: number | string;
}

export interface ForceOption {
  readonly force?: boolean;
}

export const DEFAULT_CLIENT_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024;
/** A support bundle carries every node's recent logs, compressed. */
export const DEFAULT_MAX_BUNDLE_BYTES = 256 * 1024 * 1024;
export const DEFAULT_BUNDLE_TIMEOUT_MS = 120_000;

interface RawResponse {
  readonly status: number;
  readonly json: unknown;
}

/**
 * Typed client of the Plinth REST API (ARCHITECTURE.md "REST") over the
 * global fetch. Throws PlinthApiError for error responses and
 * PlinthConnectionError when the daemon cannot be reached.
 */
export class PlinthClient {
  private readonly baseUrl: string;
  private readonly token: string;
  private readonly timeoutMs: number;
  private readonly maxResponseBytes: number;
  private readonly requestId: string | undefined;
  private readonly dispatcher: FetchDispatcher | undefined;

  constructor(options: PlinthClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.token = options.token;
    this.dispatcher = options.ca === undefined ? undefined : dispatcherTrusting(options.ca);
    this.timeoutMs = options.timeoutMs ?? DEFAULT_CLIENT_TIMEOUT_MS;
    this.maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    this.requestId = options.requestId;
  }

  async cluster(): Promise<ClusterView> {
    const response = await this.request('GET', '/v1/cluster');
    return decodeCluster(response.json, response.status);
  }

  async nodes(): Promise<NodeView[]> {
    const response = await this.request('GET', '/v1/nodes');
    return decodeNodeList(response.json, response.status);
  }

  async listVolumes(): Promise<VolumeView[]> {
    const response = await this.request('GET', '/v1/volumes');
    return decodeVolumeList(response.json, response.status);
  }

  async getVolume(name: string): Promise<VolumeView> {
    const response = await this.request('GET', volumePath(name));
    return decodeVolume(response.json, response.status);
  }

  async createVolume(input: CreateVolumeInput): Promise<VolumeView> {
    const body = {
      name: input.name,
      size: input.size,
      ...(input.replicas === undefined ? {} : { replicas: input.replicas }),
      ...(input.grace === undefined ? {} : { grace: input.grace }),
    };
    const response = await this.request('POST', '/v1/volumes', body);
    return decodeVolume(response.json, response.status);
  }

  /** Grow only: the daemon refuses shrinking with INVALID_SIZE. */
  async resizeVolume(name: string, size: number | string): Promise<VolumeView> {
    const response = await this.request('PATCH', volumePath(name), { size });
    return decodeVolume(response.json, response.status);
  }

  /** `node rm`: refused with LAST_IN_SYNC_REPLICA while the node holds a volume's last in-sync copy. */
  async removeNode(id: string): Promise<void> {
    await this.request('DELETE', `/v1/nodes/${encodeURIComponent(id)}`);
  }

  /** `node drain`: start draining (202); progress shows in the node view's `drain`. */
  async drainNode(id: string): Promise<NodeView> {
    const response = await this.request('POST', `/v1/nodes/${encodeURIComponent(id)}/drain`);
    return decodeNode(response.json, response.status);
  }

  /** `node undrain`: cancel a drain. */
  async undrainNode(id: string): Promise<NodeView> {
    const response = await this.request('DELETE', `/v1/nodes/${encodeURIComponent(id)}/drain`);
    return decodeNode(response.json, response.status);
  }

  async deleteVolume(name: string): Promise<void> {
    await this.request('DELETE', volumePath(name));
  }

  async attachVolume(name: string, node: string, options: ForceOption = {}): Promise<VolumeView> {
    const body = options.force === undefined ? { node } : { node, force: options.force };
    const response = await this.request('POST', `${volumePath(name)}/attach`, body);
    return decodeVolume(response.json, response.status);
  }

  async detachVolume(name: string, options: ForceOption = {}): Promise<VolumeView> {
    const body = options.force === undefined ? {} : { force: options.force };
    const response = await this.request('POST', `${volumePath(name)}/detach`, body);
    return decodeVolume(response.json, response.status);
  }

  /** Per-volume iSCSI CHAP; the answer shows the user and whether it is mutual, never a secret. */
  async setVolumeChap(name: string, chap: VolumeChapRequest): Promise<VolumeView> {
    const body = {
      user: chap.user,
      secret: chap.secret,
      ...(chap.targetUser === undefined ? {} : { targetUser: chap.targetUser }),
      ...(chap.targetSecret === undefined ? {} : { targetSecret: chap.targetSecret }),
    };
    const response = await this.request('PUT', `${volumePath(name)}/chap`, body);
    return decodeVolume(response.json, response.status);
  }

  // --- issue 8: snapshots (docs/snapshots.md) ---

  async listSnapshots(volume: string): Promise<SnapshotView[]> {
    const response = await this.request('GET', `${volumePath(volume)}/snapshots`);
    return decodeSnapshotList(response.json, response.status);
  }

  async createSnapshot(volume: string, snapshot: string): Promise<SnapshotView> {
    const response = await this.request('POST', `${volumePath(volume)}/snapshots`, { name: snapshot });
    return decodeSnapshot(response.json, response.status);
  }

  async createSnapshotGroup(name: string, volumes: readonly string[]): Promise<SnapshotGroupView> {
    const response = await this.request('POST', '/v1/snapshot-groups', { name, volumes: [...volumes] });
    return decodeSnapshotGroup(response.json, response.status);
  }

  async deleteSnapshot(volume: string, snapshot: string): Promise<void> {
    await this.request('DELETE', snapshotPath(volume, snapshot));
  }

  async cloneVolume(volume: string, snapshot: string, cloneName: string): Promise<VolumeView> {
    const response = await this.request('POST', `${snapshotPath(volume, snapshot)}/clone`, { name: cloneName });
    return decodeVolume(response.json, response.status);
  }

  async revertVolume(volume: string, snapshot: string): Promise<VolumeView> {
    const response = await this.request('POST', `${snapshotPath(volume, snapshot)}/revert`);
    return decodeVolume(response.json, response.status);
  }

  // --- issue 8: copies between clusters and retention (api/routes/send-receive-routes.ts) ---

  /**
   * `volume send`: the stream's bytes as they arrive (never buffered here);
   * refusals before the first byte are PlinthApiError. No overall timeout:
   * a send lasts as long as the copy.
   */
  async sendSnapshot(volume: string, snapshot: string, options: { readonly base?: string; readonly fromChunk?: number } = {}): Promise<{ body: ReadableStream<Uint8Array>; totalChunkCount: number }> {
    const query = new URLSearchParams();
    if (options.base !== undefined) query.set('base', options.base);
    if (options.fromChunk !== undefined) query.set('fromChunk', String(options.fromChunk));
    const suffix = query.size === 0 ? '' : `?${query.toString()}`;
    const response = await this.fetchStream('GET', `${snapshotPath(volume, snapshot)}/send${suffix}`, undefined);
    if (response.body === null) throw new PlinthApiError('BAD_RESPONSE', response.status, 'plinthd sent no stream');
    return { body: response.body, totalChunkCount: Number(response.headers.get('x-plinth-send-chunks') ?? 0) };
  }

  /** `volume receive`: upload a send stream (streamed, with backpressure); resolves when the daemon verified and committed it. */
  async receiveVolume(name: string, stream: ReadableStream<Uint8Array>, options: { readonly resume?: boolean; readonly replicas?: number } = {}): Promise<ReceiveResultView> {
    const query = new URLSearchParams();
    if (options.resume === true) query.set('resume', 'true');
    if (options.replicas !== undefined) query.set('replicas', String(options.replicas));
    const suffix = query.size === 0 ? '' : `?${query.toString()}`;
    const response = await this.fetchStream('POST', `${volumePath(name)}/receive${suffix}`, stream);
    const text = await response.text();
    return decodeReceiveResult(parseJsonBody(response, text), response.status);
  }

  /** Where a receive stands: `nextChunk` is what a resumed `send --from-chunk` starts at. */
  async receiveStatus(name: string): Promise<ReceiveStatusView> {
    const response = await this.request('GET', `${volumePath(name)}/receive`);
    return decodeReceiveStatus(response.json, response.status);
  }

  async abortReceive(name: string): Promise<void> {
    await this.request('DELETE', `${volumePath(name)}/receive`);
  }

  async snapshotSchedule(name: string): Promise<SnapshotScheduleView> {
    const response = await this.request('GET', `${volumePath(name)}/snapshot-schedule`);
    return decodeSnapshotSchedule(response.json, response.status);
  }

  /** null turns the schedule off. */
  async setSnapshotSchedule(name: string, schedule: { readonly everyMs: number; readonly keep: number } | null): Promise<SnapshotScheduleView> {
    const response = schedule === null
      ? await this.request('DELETE', `${volumePath(name)}/snapshot-schedule`)
      : await this.request('PUT', `${volumePath(name)}/snapshot-schedule`, { everyMs: schedule.everyMs, keep: schedule.keep });
    return decodeSnapshotSchedule(response.json, response.status);
  }

  /** Back to the cluster-wide CHAP settings. */
  async clearVolumeChap(name: string): Promise<VolumeView> {
    const response = await this.request('DELETE', `${volumePath(name)}/chap`);
    return decodeVolume(response.json, response.status);
  }

  /**
   * `plinth tls client-cert NAME`: a new NBD client key and certificate
   * signed by the cluster CA (POST /v1/tls/client-certificates). `days`
   * defaults to the daemon's (365).
   */
  async issueClientCertificate(input: { readonly name: string; readonly days?: number }): Promise<ClientCertificateFiles> {
    const body = input.days === undefined ? { name: input.name } : { name: input.name, days: input.days };
    const response = await this.request('POST', '/v1/tls/client-certificates', body);
    return decodeClientCertificate(response.json, response.status);
  }

  /** `plinth cluster join-token` (GET /v1/cluster/join-token); a plain cluster answers NOT_FOUND. A secret. */
  async joinToken(): Promise<string> {
    const response = await this.request('GET', '/v1/cluster/join-token');
    return decodeJoinToken(response.json, response.status);
  }

  async health(): Promise<{ status: string }> {
    const response = await this.request('GET', '/healthz');
    return decodeHealth(response.json, response.status);
  }

  /** Not ready (503) is an answer, not an error: it resolves with the reasons. */
  async ready(): Promise<Readiness> {
    const response = await this.request('GET', '/readyz', undefined, [503]);
    return decodeReadiness(response.json, response.status);
  }

  /**
   * `plinth support bundle`: every node's logs, redacted config and state as
   * a .tar.gz (GET /v1/support/bundle). `since`: a duration such as "2h".
   */
  async supportBundle(options: { readonly since?: string } = {}): Promise<SupportBundleDownload> {
    const query = options.since === undefined ? '' : `?since=${encodeURIComponent(options.since)}`;
    const { response, bytes } = await this.fetchBytes('GET', `/v1/support/bundle${query}`, undefined, {
      accept: 'application/gzip, application/json',
      maxBytes: DEFAULT_MAX_BUNDLE_BYTES,
      timeoutMs: Math.max(this.timeoutMs, DEFAULT_BUNDLE_TIMEOUT_MS),
    });
    if (!response.ok) throw decodeApiError(parseJsonBody(response, bytes.toString('utf8')), response.status, bytes.toString('utf8'));
    return { archive: bytes, nodes: supportNodesHeader(response.headers.get('x-plinth-support-nodes')) };
  }

  private async request(
    method: string,
    path: string,
    body?: Readonly<Record<string, unknown>>,
    acceptedErrorStatuses: readonly number[] = [],
  ): Promise<RawResponse> {
    const { response, bytes } = await this.fetchBytes(method, path, body, {
      accept: 'application/json',
      maxBytes: this.maxResponseBytes,
      timeoutMs: this.timeoutMs,
    });
    const text = bytes.toString('utf8');
    const json = parseJsonBody(response, text);
    if (!response.ok && !acceptedErrorStatuses.includes(response.status)) {
      throw decodeApiError(json, response.status, text);
    }
    return { status: response.status, json };
  }

  /** A streamed request or response (send/receive): no body limit, no deadline; an error answer is thrown as PlinthApiError. */
  private async fetchStream(method: string, path: string, body: ReadableStream<Uint8Array> | undefined): Promise<Response> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}`, accept: 'application/octet-stream, application/json' };
    if (body !== undefined) headers['content-type'] = 'application/octet-stream';
    if (this.requestId !== undefined) headers['x-request-id'] = this.requestId;
    let response: Response;
    try {
      response = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers,
        ...(this.dispatcher === undefined ? {} : { dispatcher: this.dispatcher }),
        ...(body === undefined ? {} : { body, duplex: 'half' as const }),
      });
    } catch (err: unknown) {
      throw connectionError(err, this.baseUrl, 0);
    }
    if (!response.ok) {
      const text = await response.text();
      throw decodeApiError(parseJsonBody(response, text), response.status, text);
    }
    return response;
  }

  private async fetchBytes(
    method: string,
    path: string,
    body: Readonly<Record<string, unknown>> | undefined,
    limits: { readonly accept: string; readonly maxBytes: number; readonly timeoutMs: number },
  ): Promise<{ response: Response; bytes: Buffer }> {
    const url = `${this.baseUrl}${path}`;
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}`, accept: limits.accept };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.requestId !== undefined) headers['x-request-id'] = this.requestId;
    try {
      const response = await fetch(url, {
        method,
        headers,
        signal: AbortSignal.timeout(limits.timeoutMs),
        ...(this.dispatcher === undefined ? {} : { dispatcher: this.dispatcher }),
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { response, bytes: await readBoundedBytes(response, limits.maxBytes) };
    } catch (err: unknown) {
      throw connectionError(err, this.baseUrl, limits.timeoutMs);
    }
  }
}

/** Each node's status, as the daemon sent it in the x-plinth-support-nodes header; a malformed header is a BAD_RESPONSE. */
function supportNodesHeader(value: string | null): SupportBundleDownload['nodes'] {
  if (value === null) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch (err: unknown) {
    throw new PlinthApiError('BAD_RESPONSE', 200, `plinthd sent a malformed x-plinth-support-nodes header: ${value.slice(0, 100)}`, { cause: String(err) });
  }
  if (!Array.isArray(parsed)) return [];
  return parsed.flatMap((item: unknown) => {
    if (typeof item !== 'object' || item === null) return [];
    const record = item as Record<string, unknown>;
    return typeof record['nodeId'] === 'string' && typeof record['status'] === 'string' ? [{ nodeId: record['nodeId'], status: record['status'] }] : [];
  });
}

function volumePath(name: string): string {
  return `/v1/volumes/${encodeURIComponent(name)}`;
}

function snapshotPath(volume: string, snapshot: string): string {
  return `${volumePath(volume)}/snapshots/${encodeURIComponent(snapshot)}`;
}

/** Only JSON bodies are parsed; anything else (a proxy's error page) is reported with an excerpt. */
function parseJsonBody(response: Response, text: string): unknown {
  const contentType = response.headers.get('content-type') ?? '';
  if (text === '' || !contentType.includes('json')) return undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    return parsed;
  } catch (err: unknown) {
    throw new PlinthApiError('BAD_RESPONSE', response.status, `plinthd sent invalid JSON: ${text.slice(0, 100)}`, {
      cause: String(err),
    });
  }
}

async function readBoundedBytes(response: Response, maxBytes: number): Promise<Buffer> {
  if (response.body === null) return Buffer.alloc(0);
  const chunks: Uint8Array[] = [];
  let totalBytes = 0;
  for await (const chunk of response.body) {
    totalBytes += chunk.byteLength;
    // Leaving the loop cancels the stream, so the rest is never buffered.
    if (totalBytes > maxBytes) break;
    chunks.push(chunk);
  }
  if (totalBytes > maxBytes) {
    throw new PlinthApiError('TOO_LARGE', response.status, `plinthd response exceeds ${maxBytes} bytes`);
  }
  return Buffer.concat(chunks);
}

/** fetch reports refusals as TypeError("fetch failed") with the errno in `cause`. */
function connectionError(err: unknown, baseUrl: string, timeoutMs: number): Error {
  if (err instanceof PlinthApiError) return err;
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) {
    return new PlinthConnectionError('TIMEOUT', baseUrl, `plinthd at ${baseUrl} did not answer within ${timeoutMs} ms`, { cause: err });
  }
  const reason = failureReason(err);
  return new PlinthConnectionError(
    'UNREACHABLE',
    baseUrl,
    `cannot reach plinthd at ${baseUrl}: ${reason}${tlsAdvice(reason, baseUrl) || ' — is the daemon running?'}`,
    { cause: err },
  );
}

/** The errno (ECONNREFUSED, ENOTFOUND…) if any layer has one, else the innermost message. */
function failureReason(err: unknown): string {
  let current: unknown = err;
  let innermostMessage = err instanceof Error ? err.message : String(err);
  for (let depth = 0; depth < 4 && current instanceof Error; depth += 1) {
    if ('code' in current && typeof current.code === 'string') return current.code;
    innermostMessage = current.message;
    current = current instanceof AggregateError ? current.errors[0] : current.cause;
  }
  return innermostMessage;
}
