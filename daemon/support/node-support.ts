import { hostname } from 'node:os';
import { PlinthError } from '../../common/plinth-error.js';
import type { Config } from '../config/config-types.js';
import type { LogRing } from '../logging/log-ring.js';
import type { ClusterState } from '../state/cluster-state.js';
import { redactSecretFields, scrubSecretValues, secretValuesIn } from './redaction.js';

/**
 * One node's part of a support bundle (docs/operations.md "Support
 * bundle"): a few named text files, already redacted on the node that wrote
 * them, so its secrets never cross the network. The gathering node puts
 * them under `<nodeId>/` in the archive.
 */
export interface NodeSupportPart {
  readonly nodeId: string;
  /** File name → contents; names from SUPPORT_NODE_FILES only. */
  readonly files: Readonly<Record<string, string>>;
}

export const SUPPORT_NODE_FILES = ['node.json', 'config.json', 'pool.json', 'raft.json', 'logs.jsonl'] as const;

export interface NodeSupportOptions {
  readonly nodeId: string;
  readonly version: string;
  readonly config: Config;
}

export interface NodeSupportModules {
  /** Disks and pool usage (Pool.stats()). */
  readonly poolStats: () => unknown;
  /** Raft status and the leader as this node sees them. */
  readonly raftStatus: () => unknown;
  readonly clusterState: () => ClusterState;
  /** Null when the daemon keeps no log copy (embedded in tests). */
  readonly logRing: LogRing | null;
  /** This node's own secret values (API token, cluster secret), scrubbed wherever they appear. */
  readonly secrets: () => readonly string[];
  readonly now?: () => number;
}

/** Everything this node knows to be secret: its own, and the CHAP secrets of its config and of the cluster state. */
export function knownSecrets(config: Config, state: ClusterState, own: readonly string[]): string[] {
  return [...own, ...secretValuesIn(config), ...secretValuesIn(state)];
}

export function collectNodePart(request: { readonly sinceMs: number; readonly maxLogBytes: number }, options: NodeSupportOptions, modules: NodeSupportModules): NodeSupportPart {
  const nowMs = (modules.now ?? Date.now)();
  const logs = modules.logRing?.snapshot({ sinceMs: request.sinceMs, maxBytes: request.maxLogBytes }) ?? null;
  const node = {
    nodeId: options.nodeId,
    hostname: hostname(),
    version: options.version,
    collectedAt: new Date(nowMs).toISOString(),
    addresses: modules.clusterState().nodes[options.nodeId]?.addresses ?? null,
    process: { pid: process.pid, uptimeSeconds: Math.round(process.uptime()), node: process.version, platform: `${process.platform}/${process.arch}` },
    logs: logs === null
      ? { kept: false }
      : { kept: true, since: new Date(request.sinceMs).toISOString(), lines: logs.lines.length, omittedLines: logs.omittedLines, evictedLines: logs.evictedLines },
  };
  const files: Record<string, string> = {
    'node.json': json(node),
    'config.json': json(redactSecretFields(options.config)),
    'pool.json': json(redactSecretFields(modules.poolStats())),
    'raft.json': json(redactSecretFields(modules.raftStatus())),
    'logs.jsonl': logs === null || logs.lines.length === 0 ? '' : `${logs.lines.join('\n')}\n`,
  };
  const secrets = knownSecrets(options.config, modules.clusterState(), modules.secrets());
  for (const [name, text] of Object.entries(files)) files[name] = scrubSecretValues(text, secrets);
  return { nodeId: options.nodeId, files };
}

/** Check a part another node sent (peer answer): only known file names, only strings. */
export function decodeNodePart(value: unknown, expectedNodeId: string): NodeSupportPart {
  const record = typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
  const files = record['files'];
  if (record['nodeId'] !== expectedNodeId || typeof files !== 'object' || files === null) {
    throw new PlinthError('PROTOCOL_ERROR', `node ${expectedNodeId} answered the support request with something else`, { reason: 'support-part' });
  }
  const decoded: Record<string, string> = {};
  for (const [name, text] of Object.entries(files)) {
    if (!(SUPPORT_NODE_FILES as readonly string[]).includes(name) || typeof text !== 'string') {
      throw new PlinthError('PROTOCOL_ERROR', `node ${expectedNodeId} sent an unexpected support file ${JSON.stringify(name)}`, { reason: 'support-part' });
    }
    decoded[name] = text;
  }
  return { nodeId: expectedNodeId, files: decoded };
}

function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}
