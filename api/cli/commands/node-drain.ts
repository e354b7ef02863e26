import { setTimeout as sleep } from 'node:timers/promises';
import type { NodeDrainView, NodeView } from '../../../daemon/control-plane.js';
import { PlinthApiError } from '../../client/plinth-api-error.js';
import { renderJson } from '../table.js';
import { argAt, type CommandContext, type CommandSpec } from './command-spec.js';

/**
 * `plinth node drain ID [--wait]` and `plinth node undrain ID` (issue 4
 * "Drain"). With --wait the CLI polls the node view until the drain is done,
 * printing each change of progress, and fails with the blocking reasons when
 * nothing has moved for DRAIN_STALL_MS while something blocks (a volume with
 * connected clients, a detached volume, no node able to take a replica).
 */
export const DRAIN_POLL_MS = 1000;
export const DRAIN_STALL_MS = 20_000;

export const nodeDrainCommands: readonly CommandSpec[] = [
  {
    noun: 'node', verbs: ['drain'], args: ['ID'], options: ['wait'], requiredOptions: [],
    synopsis: 'node drain ID [--wait]',
    summary: 'move replicas and idle attachments off a node (--wait: until done)',
    async run(context, args, options) {
      const id = argAt(args, 0);
      const node = await context.client.drainNode(id);
      if (!options.wait) {
        context.print(context.json ? renderJson(node) : `draining node ${id}: ${describeDrain(node.drain)}\n`);
        return;
      }
      const done = await waitForDrain(context, id);
      context.print(context.json ? renderJson(done) : `node ${id} drained\n`);
    },
  },
  {
    noun: 'node', verbs: ['undrain'], args: ['ID'], options: [], requiredOptions: [],
    synopsis: 'node undrain ID',
    summary: 'cancel a drain (what moved stays moved)',
    async run(context, args) {
      const node = await context.client.undrainNode(argAt(args, 0));
      context.print(context.json ? renderJson(node) : `node ${node.id} is no longer draining\n`);
    },
  },
];

/** One line of progress, also used by `node ls`. */
export function describeDrain(drain: NodeDrainView | undefined): string {
  if (drain === undefined) return 'not draining';
  if (drain.done) return 'done';
  const attached = drain.attachedVolumes.length;
  const blocked = drain.blocking.length === 0 ? '' : `, ${drain.blocking.length} blocking`;
  return `${drain.replicasLeft} volume replica(s) and ${attached} attachment(s) left${blocked}`;
}

async function waitForDrain(context: CommandContext, id: string): Promise<NodeView> {
  let lastLine = '';
  let lastChangeMs = Date.now();
  for (;;) {
    const node = (await context.client.nodes()).find((candidate) => candidate.id === id);
    if (node === undefined) throw new PlinthApiError('NODE_NOT_FOUND', 404, `node ${id} is no longer a member of the cluster`, { nodeId: id });
    const drain = node.drain;
    if (drain === undefined) throw new PlinthApiError('DRAIN_CANCELLED', 200, `node ${id} is no longer draining (node undrain?)`, { nodeId: id });
    if (drain.done) return node;
    const line = describeDrain(drain);
    if (line !== lastLine) {
      if (!context.json) context.print(`draining node ${id}: ${line}\n`);
      lastLine = line;
      lastChangeMs = Date.now();
    } else if (drain.blocking.length > 0 && Date.now() - lastChangeMs >= DRAIN_STALL_MS) {
      const reasons = drain.blocking.map((blocker) => blocker.reason);
      throw new PlinthApiError('DRAIN_BLOCKED', 200, `drain of node ${id} cannot finish: ${[...new Set(reasons)].join('; ')}`, {
        nodeId: id,
        blocking: drain.blocking,
      });
    }
    await sleep(DRAIN_POLL_MS);
  }
}
