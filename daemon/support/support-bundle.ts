import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import type { Logger } from 'pino';
import { toError } from '../../common/plinth-error.js';
import type { ClusterState } from '../state/cluster-state.js';
import { decodeNodePart, type NodeSupportPart } from './node-support.js';
import { redactSecretFields, scrubSecretValues } from './redaction.js';
import { tarArchive, type TarEntry } from './tar-writer.js';

const gzipAsync = promisify(gzip);

/**
 * `plinth support bundle` (docs/operations.md "Support bundle"): the node
 * the CLI talks to gathers every member's part (its own directly, the
 * others' over the peer port), adds the cluster state and a manifest, and
 * returns one .tar.gz:
 *
 *   manifest.json   what was collected, from where; unreachable nodes with the error
 *   cluster.json    the committed cluster state (secrets redacted)
 *   <nodeId>/...    node.json, config.json, pool.json, raft.json, logs.jsonl
 *
 * A node that does not answer costs only its own directory: it is listed in
 * the manifest as unreachable and the bundle still succeeds.
 */
export const SUPPORT_BUNDLE_FORMAT = 'plinth-support-bundle/1';

export interface SupportBundleOptions {
  readonly nodeId: string;
  /** Logs from this time on (epoch ms); 0 for everything the rings still hold. */
  readonly sinceMs: number;
  /** All nodes' logs together stay under this (a limit on everything); split evenly between nodes. */
  readonly maxTotalLogBytes: number;
  /** A node's own log copy holds at most this much anyway. */
  readonly maxNodeLogBytes: number;
}

export interface SupportBundleModules {
  /** The committed state; `consistent` false when no linearizable read was possible (no quorum). */
  readonly clusterState: () => Promise<{ readonly state: ClusterState; readonly leaderId: string | null; readonly consistent: boolean }>;
  readonly localPart: (sinceMs: number, maxLogBytes: number) => Promise<NodeSupportPart>;
  /** Another node's part (peer RPC `support-node`); rejects when it cannot be reached in time. */
  readonly remotePart: (nodeId: string, sinceMs: number, maxLogBytes: number) => Promise<unknown>;
  /** Every secret value known here, scrubbed once more over the whole archive. */
  readonly secrets: (state: ClusterState) => readonly string[];
  readonly logger: Logger;
  readonly now?: () => number;
}

export interface ManifestNode {
  readonly nodeId: string;
  readonly status: 'ok' | 'unreachable';
  /** 'local' or 'peer'. */
  readonly source: string;
  readonly files: readonly string[];
  readonly error?: { readonly code: string; readonly message: string };
}

export interface SupportManifest {
  readonly format: string;
  readonly createdAt: string;
  readonly gatheredBy: string;
  readonly since: string | null;
  readonly clusterId: string | null;
  readonly leaderId: string | null;
  readonly stateConsistent: boolean;
  readonly nodes: readonly ManifestNode[];
}

export interface SupportBundle {
  /** The .tar.gz bytes. */
  readonly archive: Buffer;
  readonly manifest: SupportManifest;
}

export async function gatherSupportBundle(options: SupportBundleOptions, modules: SupportBundleModules): Promise<SupportBundle> {
  const nowMs = (modules.now ?? Date.now)();
  const cluster = await modules.clusterState();
  const nodeIds = Object.keys(cluster.state.nodes).sort();
  if (!nodeIds.includes(options.nodeId)) nodeIds.unshift(options.nodeId);
  const perNodeLogBytes = Math.max(64 * 1024, Math.min(options.maxNodeLogBytes, Math.floor(options.maxTotalLogBytes / nodeIds.length)));
  const gathered = await Promise.all(nodeIds.map((nodeId) => gatherNode(nodeId, options, modules, perNodeLogBytes)));

  const secrets = modules.secrets(cluster.state);
  const entries: TarEntry[] = [];
  const mtimeMs = nowMs;
  const manifest: SupportManifest = {
    format: SUPPORT_BUNDLE_FORMAT,
    createdAt: new Date(nowMs).toISOString(),
    gatheredBy: options.nodeId,
    since: options.sinceMs > 0 ? new Date(options.sinceMs).toISOString() : null,
    clusterId: cluster.state.clusterId,
    leaderId: cluster.leaderId,
    stateConsistent: cluster.consistent,
    nodes: gathered.map((node) => node.manifest),
  };
  entries.push({ path: 'manifest.json', data: text(json(manifest), secrets), mtimeMs });
  const clusterFile = { clusterId: cluster.state.clusterId, leaderId: cluster.leaderId, consistent: cluster.consistent, state: redactSecretFields(cluster.state) };
  entries.push({ path: 'cluster.json', data: text(json(clusterFile), secrets), mtimeMs });
  for (const node of gathered) {
    if (node.part === null) continue;
    entries.push({ path: `${node.manifest.nodeId}/`, mtimeMs });
    for (const [name, contents] of Object.entries(node.part.files)) {
      entries.push({ path: `${node.manifest.nodeId}/${name}`, data: text(contents, secrets), mtimeMs });
    }
  }
  const archive = await gzipAsync(tarArchive(entries));
  modules.logger.info(
    { nodes: manifest.nodes.map((node) => `${node.nodeId}:${node.status}`), bytes: archive.length },
    'support bundle gathered',
  );
  return { archive, manifest };
}

async function gatherNode(
  nodeId: string,
  options: SupportBundleOptions,
  modules: SupportBundleModules,
  maxLogBytes: number,
): Promise<{ manifest: ManifestNode; part: NodeSupportPart | null }> {
  const local = nodeId === options.nodeId;
  const source = local ? 'local' : 'peer';
  try {
    const part = local
      ? await modules.localPart(options.sinceMs, maxLogBytes)
      : decodeNodePart(await modules.remotePart(nodeId, options.sinceMs, maxLogBytes), nodeId);
    return { manifest: { nodeId, status: 'ok', source, files: Object.keys(part.files).map((name) => `${nodeId}/${name}`) }, part };
  } catch (err) {
    const error = toError(err);
    const code = 'code' in error && typeof error.code === 'string' ? error.code : 'INTERNAL';
    modules.logger.warn({ err: error, node: nodeId }, 'support bundle: node unreachable; listed as such');
    return { manifest: { nodeId, status: 'unreachable', source, files: [], error: { code, message: error.message } }, part: null };
  }
}

function text(contents: string, secrets: readonly string[]): Buffer {
  return Buffer.from(scrubSecretValues(contents, secrets), 'utf8');
}

function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}
