import { formatSize } from '../../../common/sizes.js';
import { renderJson, renderTable } from '../table.js';
import type { CommandSpec } from './command-spec.js';

export const nodeCommands: readonly CommandSpec[] = [
  {
    noun: 'node',
    verbs: ['ls', 'list'],
    args: [],
    options: [],
    requiredOptions: [],
    synopsis: 'node ls',
    summary: 'list the nodes with their capacity',
    async run(context) {
      const nodes = await context.client.nodes();
      if (context.json) {
        context.print(renderJson({ nodes }));
        return;
      }
      context.print(renderTable(
        ['ID', 'STATE', 'LEADER', 'DISKS', 'CAPACITY', 'USED', 'API'],
        nodes.map((node) => [
          node.id,
          node.state,
          node.leader ? 'yes' : 'no',
          String(node.disks.length),
          formatSize(node.capacityBytes),
          formatSize(node.usedBytes),
          node.addresses.api,
        ]),
      ));
    },
  },
];
