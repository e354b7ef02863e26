import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { CommandProposer } from '../control/command-proposer.js';
import type { NodeAddresses } from '../state/cluster-state.js';
import { findNode } from '../state/cluster-state.js';

/**
 * ARCHITECTURE "cluster": a node started on an empty data dir without --join
 * bootstraps a one-member cluster. On later starts this only refreshes the
 * node's addresses when the configuration changed them.
 */
export async function bootstrapCluster(
  options: { readonly nodeId: string; readonly addresses: NodeAddresses },
  modules: { readonly commands: CommandProposer; readonly logger: Logger; readonly newId?: () => string; readonly clock?: () => Date },
): Promise<void> {
  const { commands, logger } = modules;
  if (commands.state.clusterId === null) {
    const clusterId = (modules.newId ?? randomUUID)();
    await commands.propose({ type: 'cluster.init', clusterId });
    logger.info({ clusterId }, 'bootstrapped a one-member cluster');
  }
  const known = findNode(commands.state, options.nodeId);
  const sameAddresses = known !== undefined && JSON.stringify(known.addresses) === JSON.stringify(options.addresses);
  if (!sameAddresses) {
    const joinedAt = (modules.clock ?? (() => new Date()))().toISOString();
    await commands.propose({ type: 'node.join', nodeId: options.nodeId, addresses: options.addresses, joinedAt });
    logger.info({ nodeId: options.nodeId, addresses: options.addresses }, known === undefined ? 'node registered' : 'node addresses updated');
  }
}
