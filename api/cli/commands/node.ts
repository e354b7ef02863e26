import { formatSize } from '../../../common/sizes.js';
import { renderJson, renderTable } from '../table.js';
import { argAt, type CommandSpec } from './command-spec.js';
import { describeDrain } from './node-drain.js';

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
        ['ID', 'STATE', 'LEADER', 'DISKS', 'CAPACITY', 'USED', 'API', 'DRAIN'],
        nodes.map((node) => [
          node.id,
          node.state,
          node.leader ? 'yes' : 'no',
          String(node.disks.length),
          formatSize(node.capacityBytes),
          formatSize(node.usedBytes),
          node.addresses.api,
          node.drain === undefined ? '-' : describeDrain(node.drain),
        ]),
      ));
    },
  },
  {
    noun: 'node',
    verbs: ['rm', 'remove'],
    args: ['ID'],
    options: [],
    requiredOptions: [],
    synopsis: 'node rm ID',
    summary: 'remove a node from the cluster (drain it first)',
    async run(context, args) {
      const id = argAt(args, 0);
      await context.client.removeNode(id);
      context.print(context.json ? renderJson({ id, removed: true }) : `removed node ${id}\n`);
    },
  },
];
