/**
 * The REST contract (ARCHITECTURE "REST" and "auth" rows) spoken with plain
 * fetch, as an outside client would: the e2e tests check status codes and
 * error bodies on the wire, not through the project's own typed client.
 */
export interface ApiResponse {
  readonly status: number;
  readonly body: unknown;
  readonly text: string;
}

export interface ApiErrorBody {
  readonly error: { readonly code: string; readonly message: string };
}

const REQUEST_TIMEOUT_MS = 10_000;

export function isApiErrorBody(body: unknown): body is ApiErrorBody {
  if (typeof body !== 'object' || body === null || !('error' in body)) return false;
  const error: unknown = body.error;
  return typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string';
}

export function errorCode(response: ApiResponse): string | undefined {
  return isApiErrorBody(response.body) ? response.body.error.code : undefined;
}

export interface RawRequest {
  readonly method: string;
  readonly path: string;
  readonly token?: string;
  /** A JSON value to send, or a raw string sent as-is (for malformed input). */
  readonly json?: unknown;
  readonly rawBody?: string;
  readonly contentType?: string;
}

export async function apiRequest(apiUrl: string, request: RawRequest): Promise<ApiResponse> {
  const headers: Record<string, string> = {};
  if (request.token !== undefined) headers['authorization'] = `Bearer ${request.token}`;
  let body: string | undefined;
  if (request.rawBody !== undefined) body = request.rawBody;
  else if (request.json !== undefined) body = JSON.stringify(request.json);
  if (body !== undefined) headers['content-type'] = request.contentType ?? 'application/json';
  const init: RequestInit = { method: request.method, headers, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) };
  if (body !== undefined) init.body = body;
  const response = await fetch(`${apiUrl}${request.path}`, init);
  const text = await response.text();
  // Only JSON responses are parsed (/metrics and /docs are text); a JSON
  // content type with a malformed body throws, failing the test loudly.
  const isJson = (response.headers.get('content-type') ?? '').includes('application/json');
  const parsed: unknown = isJson && text !== '' ? JSON.parse(text) : undefined;
  return { status: response.status, body: parsed, text };
}

export interface VolumeSummary {
  readonly name: string;
  readonly sizeBytes: number;
}

function isVolumeSummary(body: unknown): body is VolumeSummary {
  return typeof body === 'object' && body !== null && 'name' in body && 'sizeBytes' in body && typeof body.sizeBytes === 'number';
}

/** POST /v1/volumes and insist on 201 with the volume in the body. */
export async function createVolume(apiUrl: string, token: string, name: string, size: string | number): Promise<VolumeSummary> {
  const response = await apiRequest(apiUrl, { method: 'POST', path: '/v1/volumes', token, json: { name, size } });
  if (response.status !== 201 || !isVolumeSummary(response.body)) {
    throw new Error(`POST /v1/volumes ${name} ${String(size)}: HTTP ${response.status} ${response.text}`);
  }
  return response.body;
}

export async function healthz(apiUrl: string): Promise<number> {
  return (await apiRequest(apiUrl, { method: 'GET', path: '/healthz' })).status;
}
