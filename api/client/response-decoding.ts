import type { ClusterView, NodeView, Readiness, SnapshotGroupView, SnapshotView, VolumeView } from '../../daemon/control-plane.js';
import { PlinthApiError } from './plinth-api-error.js';

/**
 * Light shape checks on what the daemon returns: the server's response
 * schemas already guarantee the full shape, so the client checks only the
 * fields that tell one view from another and fails loudly on anything else
 * (a proxy's HTML page, a different service on the port).
 */
type JsonObject = Readonly<Record<string, unknown>>;

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function malformed(what: string, status: number): PlinthApiError {
  return new PlinthApiError('BAD_RESPONSE', status, `plinthd sent a malformed ${what}`);
}

function hasFields(value: JsonObject, fields: Readonly<Record<string, 'string' | 'number' | 'boolean'>>): boolean {
  return Object.entries(fields).every(([key, type]) => typeof value[key] === type);
}

function field(value: unknown, key: string, what: string, status: number): unknown {
  if (!isJsonObject(value)) throw malformed(what, status);
  return value[key];
}

export function decodeVolume(value: unknown, status: number): VolumeView {
  if (!isJsonObject(value) || !hasFields(value, { name: 'string', sizeBytes: 'number', replicaCount: 'number' })) {
    throw malformed('volume', status);
  }
  // Shape vouched for by the server's VolumeView response schema.
  return value as unknown as VolumeView;
}

export function decodeVolumeList(value: unknown, status: number): VolumeView[] {
  const list = field(value, 'volumes', 'volume list', status);
  if (!Array.isArray(list)) throw malformed('volume list', status);
  return list.map((item: unknown) => decodeVolume(item, status));
}

export function decodeNodeList(value: unknown, status: number): NodeView[] {
  const list = field(value, 'nodes', 'node list', status);
  if (!Array.isArray(list)) throw malformed('node list', status);
  return list.map((item: unknown) => decodeNode(item, status));
}

export function decodeNode(value: unknown, status: number): NodeView {
  if (!isJsonObject(value) || !hasFields(value, { id: 'string', state: 'string', leader: 'boolean' })) {
    throw malformed('node', status);
  }
  // Shape vouched for by the server's NodeView response schema.
  return value as unknown as NodeView;
}

export function decodeCluster(value: unknown, status: number): ClusterView {
  if (!isJsonObject(value) || !hasFields(value, { clusterId: 'string', nodeCount: 'number', volumeCount: 'number' })) {
    throw malformed('cluster view', status);
  }
  return value as unknown as ClusterView;
}

export function decodeReadiness(value: unknown, status: number): Readiness {
  if (!isJsonObject(value) || typeof value['ready'] !== 'boolean' || !Array.isArray(value['reasons'])) {
    throw malformed('readiness', status);
  }
  return { ready: value['ready'], reasons: value['reasons'].map(String) };
}

export function decodeHealth(value: unknown, status: number): { status: string } {
  const healthStatus = field(value, 'status', 'health', status);
  if (typeof healthStatus !== 'string') throw malformed('health', status);
  return { status: healthStatus };
}

/** Turn an error response body into a PlinthApiError; tolerate non-JSON bodies. */
export function decodeApiError(value: unknown, status: number, fallbackText: string): PlinthApiError {
  const error = isJsonObject(value) ? value['error'] : undefined;
  if (isJsonObject(error) && typeof error['code'] === 'string' && typeof error['message'] === 'string') {
    const details = isJsonObject(error['details']) ? error['details'] : {};
    return new PlinthApiError(error['code'], status, error['message'], details);
  }
  const excerpt = fallbackText.slice(0, 200).trim();
  return new PlinthApiError(`HTTP_${status}`, status, `plinthd answered HTTP ${status}${excerpt === '' ? '' : `: ${excerpt}`}`);
}

/** `POST /v1/tls/client-certificates`: three PEM strings (api/schemas/tls-schemas.ts). */
export interface ClientCertificateFiles {
  readonly caCert: string;
  readonly clientCert: string;
  readonly clientKey: string;
}

export function decodeClientCertificate(value: unknown, status: number): ClientCertificateFiles {
  if (!isJsonObject(value) || !hasFields(value, { caCert: 'string', clientCert: 'string', clientKey: 'string' })) {
    throw malformed('client certificate', status);
  }
  const { caCert, clientCert, clientKey } = value as Record<'caCert' | 'clientCert' | 'clientKey', string>;
  if (![caCert, clientCert, clientKey].every((pem) => pem.includes('-----BEGIN '))) throw malformed('client certificate (not PEM)', status);
  return { caCert, clientCert, clientKey };
}

export function decodeJoinToken(value: unknown, status: number): string {
  const token = field(value, 'token', 'join token', status);
  if (typeof token !== 'string' || !/^[0-9a-f]{64}$/.test(token)) throw malformed('join token', status);
  return token;
}

/** Issue 8: one snapshot (SnapshotView). */
export function decodeSnapshot(value: unknown, status: number): SnapshotView {
  if (!isJsonObject(value) || !hasFields(value, { id: 'string', name: 'string', volume: 'string', sizeBytes: 'number' }) || !Array.isArray(value['holders'])) {
    throw malformed('snapshot', status);
  }
  // Shape vouched for by the server's SnapshotView response schema.
  return value as unknown as SnapshotView;
}

export function decodeSnapshotGroup(value: unknown, status: number): SnapshotGroupView {
  if (!isJsonObject(value) || !hasFields(value, { groupId: 'string', name: 'string' })) throw malformed('snapshot group', status);
  return { groupId: value['groupId'] as string, name: value['name'] as string, snapshots: decodeSnapshotList(value, status) };
}

export function decodeSnapshotList(value: unknown, status: number): SnapshotView[] {
  const list = field(value, 'snapshots', 'snapshot list', status);
  if (!Array.isArray(list)) throw malformed('snapshot list', status);
  return list.map((item: unknown) => decodeSnapshot(item, status));
}
