/** Committed cluster states for the pure plan tests (drain, locality, repair), built by applying commands. */
import { PlinthError } from '../../../common/plinth-error.js';
import { applyCommand } from '../../../daemon/state/apply-command.js';
import { emptyClusterState, type ClusterState } from '../../../daemon/state/cluster-state.js';
import type { Command } from '../../../daemon/state/commands.js';

export const ADDRESSES = { api: '127.0.0.1:9700', peer: '127.0.0.1:9701', nbd: '127.0.0.1:10809', iscsi: '127.0.0.1:3260' };
export const AT = '2026-02-01T00:00:00.000Z';
export const GiB = 1024 ** 3;

export function apply(state: ClusterState, ...commands: Command[]): ClusterState {
  return commands.reduce((current, command) => {
    const outcome = applyCommand(current, command);
    if (outcome instanceof PlinthError) throw outcome;
    return outcome.state;
  }, state);
}

export function cluster(nodes: Record<string, { zone?: string; freeGiB?: number }>): ClusterState {
  const ids = Object.keys(nodes);
  return apply(
    emptyClusterState(),
    { type: 'cluster.init', clusterId: 'c1' },
    ...ids.map((nodeId): Command => {
      const zone = nodes[nodeId]?.zone;
      return { type: 'node.join', nodeId, addresses: ADDRESSES, joinedAt: AT, ...(zone === undefined ? {} : { labels: { zone } }) };
    }),
    ...ids.map((nodeId): Command => ({
      type: 'node.capacity', nodeId, capacityBytes: 100 * GiB, freeBytes: (nodes[nodeId]?.freeGiB ?? 50) * GiB, diskCount: 1, at: AT,
    })),
  );
}
