import { writeFile } from 'node:fs/promises';
import { renderJson } from '../table.js';
import type { CommandSpec } from './command-spec.js';

/**
 * `plinth support bundle [--output FILE] [--since DURATION]`
 * (docs/operations.md "Support bundle"): one call gathers every node's
 * recent logs, redacted config, pool and Raft status and the cluster state
 * into a .tar.gz. Nodes that did not answer are listed, not fatal.
 */
export const supportCommands: readonly CommandSpec[] = [
  {
    noun: 'support', verbs: ['bundle'], args: [], options: ['output', 'since'], requiredOptions: [],
    synopsis: 'support bundle [--output FILE] [--since DURATION]',
    summary: 'logs, redacted config and state of every node, as a .tar.gz',
    async run(context, _args, options) {
      const bundle = await context.client.supportBundle(options.since === undefined ? {} : { since: options.since });
      const path = options.output ?? `plinth-support-${new Date().toISOString().replace(/[:.]/g, '-')}.tar.gz`;
      // 0600: redacted, but still the cluster's logs and layout.
      await writeFile(path, bundle.archive, { mode: 0o600 });
      if (context.json) {
        context.print(renderJson({ path, bytes: bundle.archive.length, nodes: bundle.nodes }));
        return;
      }
      const lines = bundle.nodes.map((node) => `  ${node.nodeId}: ${node.status}`);
      context.print([`wrote ${path} (${bundle.archive.length} bytes)`, ...lines, ''].join('\n'));
    },
  },
];
