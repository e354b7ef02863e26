import type { ClusterView, NodeView, Readiness, VolumeChapRequest, VolumeView } from '../../daemon/control-plane.js';
import { PlinthApiError, PlinthConnectionError } from './plinth-api-error.js';
import {
  decodeApiError,
  decodeCluster,
  decodeHealth,
  decodeNode,
  decodeNodeList,
  decodeReadiness,
  decodeVolume,
  decodeVolumeList,
} from './response-decoding.js';

export { PlinthApiError, PlinthConnectionError } from './plinth-api-error.js';

export interface PlinthClientOptions {
  /** e.g. http://127.0.0.1:9700 */
  readonly baseUrl: string;
  readonly token: string;
  /** Per-request deadline, connect through last byte. */
  readonly timeoutMs?: number;
  /** Largest response body accepted (a limit on everything). */
  readonly maxResponseBytes?: number;
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

  constructor(options: PlinthClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.token = options.token;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_CLIENT_TIMEOUT_MS;
    this.maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
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

  /** Back to the cluster-wide CHAP settings. */
  async clearVolumeChap(name: string): Promise<VolumeView> {
    const response = await this.request('DELETE', `${volumePath(name)}/chap`);
    return decodeVolume(response.json, response.status);
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

  private async request(
    method: string,
    path: string,
    body?: Readonly<Record<string, unknown>>,
    acceptedErrorStatuses: readonly number[] = [],
  ): Promise<RawResponse> {
    const url = `${this.baseUrl}${path}`;
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}`, accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    let text: string;
    try {
      response = await fetch(url, {
        method,
        headers,
        signal: AbortSignal.timeout(this.timeoutMs),
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      text = await readBoundedText(response, this.maxResponseBytes);
    } catch (err: unknown) {
      throw connectionError(err, this.baseUrl, this.timeoutMs);
    }
    const json = parseJsonBody(response, text);
    if (!response.ok && !acceptedErrorStatuses.includes(response.status)) {
      throw decodeApiError(json, response.status, text);
    }
    return { status: response.status, json };
  }
}

function volumePath(name: string): string {
  return `/v1/volumes/${encodeURIComponent(name)}`;
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

async function readBoundedText(response: Response, maxBytes: number): Promise<string> {
  if (response.body === null) return '';
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
  return Buffer.concat(chunks).toString('utf8');
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
    `cannot reach plinthd at ${baseUrl}: ${reason} — is the daemon running?`,
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
