import type { Logger } from 'pino';
import { toError } from '../../common/plinth-error.js';
import type { Pool } from '../../blockdev/pool/pool-types.js';
import type { Config } from '../config/config-types.js';
import type { ClusterState } from '../state/cluster-state.js';
import type { ClusterNode } from '../cluster/start-cluster-node.js';
import { DEFAULT_LOG_RING_OPTIONS, type LogRing } from '../logging/log-ring.js';
import { collectNodePart, knownSecrets, type NodeSupportPart } from './node-support.js';
import { gatherSupportBundle, type SupportBundle } from './support-bundle.js';

/**
 * The support bundle as the REST API sees it (api/routes/support-routes.ts),
 * and this node's answer to other nodes gathering one (peer RPC
 * `support-node`, daemon/cluster/raft-command-log.ts).
 */
export interface SupportService {
  /** This node's part; `sinceMs` 0 for all the log lines kept. */
  nodePart(request: { readonly sinceMs: number }): Promise<NodeSupportPart>;
  /** Every node's part, the cluster state and the manifest, as a .tar.gz. */
  bundle(request: { readonly sinceMs: number }): Promise<SupportBundle>;
}

export interface SupportServiceOptions {
  readonly nodeId: string;
  readonly version: string;
  readonly config: Config;
  /** How long one other node may take to answer. */
  readonly peerTimeoutMs?: number;
  /** Bound on all nodes' logs in one bundle, split between the nodes. */
  readonly maxTotalLogBytes?: number;
}

export interface SupportServiceModules {
  readonly cluster: ClusterNode;
  readonly pool: Pool;
  readonly logRing: LogRing | null;
  readonly apiToken: string;
  readonly logger: Logger;
}

export const DEFAULT_SUPPORT_PEER_TIMEOUT_MS = 10_000;
export const DEFAULT_MAX_TOTAL_LOG_BYTES = 96 * 1024 * 1024;
/** JSON escaping of log lines (quotes) grows them; the rest of a part is small. */
const ANSWER_OVERHEAD_BYTES = 1024 * 1024;

export function createSupportService(options: SupportServiceOptions, modules: SupportServiceModules): SupportService {
  const { cluster, pool, logRing, logger } = modules;
  const ownSecrets = (): string[] => [modules.apiToken, cluster.secret.toString('hex'), cluster.secret.toString('base64')];
  const maxNodeLogBytes = DEFAULT_LOG_RING_OPTIONS.maxBytes;
  const localPart = async (sinceMs: number, maxLogBytes: number): Promise<NodeSupportPart> =>
    collectNodePart(
      { sinceMs, maxLogBytes: Math.min(maxLogBytes, maxNodeLogBytes) },
      options,
      {
        poolStats: () => pool.stats(),
        raftStatus: () => ({ leaderId: cluster.raft.leaderId, status: cluster.raft.status() }),
        clusterState: () => cluster.commands.state,
        logRing,
        secrets: ownSecrets,
      },
    );
  cluster.commands.serveSupportNode((sinceMs, maxLogBytes) => localPart(sinceMs, maxLogBytes));

  const remotePart = (nodeId: string, sinceMs: number, maxLogBytes: number): Promise<unknown> =>
    cluster.commands.callMember(nodeId, { op: 'support-node', sinceMs, maxLogBytes }, {
      timeoutMs: options.peerTimeoutMs ?? DEFAULT_SUPPORT_PEER_TIMEOUT_MS,
      maxAnswerBytes: 2 * maxLogBytes + ANSWER_OVERHEAD_BYTES,
    });

  const clusterState = async (): Promise<{ state: ClusterState; leaderId: string | null; consistent: boolean }> => {
    try {
      await cluster.commands.barrier();
      return { state: cluster.commands.state, leaderId: cluster.commands.leaderId, consistent: true };
    } catch (err) {
      // Without a quorum the local copy is still worth having: marked as possibly stale.
      logger.warn({ err: toError(err) }, 'support bundle: no linearizable read; using this node\'s applied state');
      return { state: cluster.commands.state, leaderId: cluster.commands.leaderId, consistent: false };
    }
  };

  return {
    nodePart: (request) => localPart(request.sinceMs, maxNodeLogBytes),
    bundle: (request) =>
      gatherSupportBundle(
        { nodeId: options.nodeId, sinceMs: request.sinceMs, maxTotalLogBytes: options.maxTotalLogBytes ?? DEFAULT_MAX_TOTAL_LOG_BYTES, maxNodeLogBytes },
        {
          clusterState,
          localPart,
          remotePart,
          secrets: (state) => knownSecrets(options.config, state, ownSecrets()),
          logger,
        },
      ),
  };
}
