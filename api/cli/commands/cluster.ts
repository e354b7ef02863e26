import { formatSize } from '../../../common/sizes.js';
import { renderJson, renderKeyValues } from '../table.js';
import type { CommandSpec } from './command-spec.js';

export const clusterCommands: readonly CommandSpec[] = [
  {
    noun: 'cluster',
    verbs: ['status'],
    args: [],
    options: [],
    requiredOptions: [],
    synopsis: 'cluster status',
    summary: 'cluster id, leader, node and volume counts, capacity',
    async run(context) {
      const cluster = await context.client.cluster();
      if (context.json) {
        context.print(renderJson(cluster));
        return;
      }
      context.print(renderKeyValues([
        ['cluster', cluster.clusterId],
        ['leader', cluster.leaderId ?? '(none)'],
        ['nodes', String(cluster.nodeCount)],
        ['volumes', String(cluster.volumeCount)],
        ['capacity', formatSize(cluster.capacityBytes)],
        ['used', formatSize(cluster.usedBytes)],
        ['version', cluster.version],
      ]));
    },
  },
];
