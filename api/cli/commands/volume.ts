import { formatDurationMs } from '../../../common/durations.js';
import { formatSize } from '../../../common/sizes.js';
import type { ReplicaView, VolumeView } from '../../../daemon/control-plane.js';
import { parseReplicaCount } from '../parse-args.js';
import { renderJson, renderKeyValues, renderTable } from '../table.js';
import { argAt, requiredOption, type CommandContext, type CommandSpec } from './command-spec.js';
import { chapDescription, volumeChapCommand } from './volume-chap.js';

/** `plinth volume …` (ARCHITECTURE.md "CLI"). Sizes go to the daemon as typed; it parses them. */
export const volumeCommands: readonly CommandSpec[] = [
  {
    noun: 'volume', verbs: ['create'], args: ['NAME'], options: ['size', 'replicas', 'grace'], requiredOptions: ['size'],
    synopsis: 'volume create NAME --size SIZE [--replicas N] [--grace 10m]',
    summary: 'create a volume (SIZE like 10GiB; --grace: how long a lost replica may stay away before it is rebuilt elsewhere)',
    async run(context, args, options) {
      const name = argAt(args, 0);
      const size = requiredOption(options.size, 'size');
      const view = await context.client.createVolume({
        name,
        size,
        ...(options.replicas === undefined ? {} : { replicas: parseReplicaCount(options.replicas) }),
        ...(options.grace === undefined ? {} : { grace: options.grace }),
      });
      printVolumeResult(context, view, `created volume ${view.name}: ${formatSize(view.sizeBytes)}, ${replicaWord(view.replicaCount)}`);
    },
  },
  {
    noun: 'volume', verbs: ['ls', 'list'], args: [], options: [], requiredOptions: [],
    synopsis: 'volume ls',
    summary: 'list volumes',
    async run(context) {
      const volumes = await context.client.listVolumes();
      if (context.json) {
        context.print(renderJson({ volumes }));
        return;
      }
      context.print(renderTable(['NAME', 'SIZE', 'REPLICAS', 'STATE', 'ATTACHED', 'USED'], volumes.map(volumeRow)));
    },
  },
  {
    noun: 'volume', verbs: ['inspect', 'show'], args: ['NAME'], options: [], requiredOptions: [],
    synopsis: 'volume inspect NAME',
    summary: 'show every detail of one volume',
    async run(context, args) {
      const view = await context.client.getVolume(argAt(args, 0));
      context.print(context.json ? renderJson(view) : renderKeyValues(volumeDetails(view)));
    },
  },
  {
    noun: 'volume', verbs: ['resize', 'grow'], args: ['NAME'], options: ['size'], requiredOptions: ['size'],
    synopsis: 'volume resize NAME --size SIZE',
    summary: 'grow a volume (alias: volume grow; shrinking is refused)',
    async run(context, args, options) {
      const view = await context.client.resizeVolume(argAt(args, 0), requiredOption(options.size, 'size'));
      printVolumeResult(context, view, `resized volume ${view.name} to ${formatSize(view.sizeBytes)}`);
    },
  },
  {
    noun: 'volume', verbs: ['rm', 'delete'], args: ['NAME'], options: [], requiredOptions: [],
    synopsis: 'volume rm NAME',
    summary: 'delete a detached volume and its data',
    async run(context, args) {
      const name = argAt(args, 0);
      await context.client.deleteVolume(name);
      context.print(context.json ? renderJson({ name, deleted: true }) : `removed volume ${name}\n`);
    },
  },
  {
    noun: 'volume', verbs: ['attach'], args: ['NAME'], options: ['node', 'force'], requiredOptions: ['node'],
    synopsis: 'volume attach NAME --node ID [--force]',
    summary: 'make node ID serve the volume (--force takes it over)',
    async run(context, args, options) {
      const view = await context.client.attachVolume(argAt(args, 0), requiredOption(options.node, 'node'), { force: options.force });
      printVolumeResult(context, view, `attached volume ${view.name} to ${view.attachedTo ?? '?'} (generation ${view.generation})`);
    },
  },
  {
    noun: 'volume', verbs: ['detach'], args: ['NAME'], options: ['force'], requiredOptions: [],
    synopsis: 'volume detach NAME [--force]',
    summary: 'stop serving the volume (--force disconnects clients)',
    async run(context, args, options) {
      const view = await context.client.detachVolume(argAt(args, 0), { force: options.force });
      printVolumeResult(context, view, `detached volume ${view.name}`);
    },
  },
  volumeChapCommand,
];

function printVolumeResult(context: CommandContext, view: VolumeView, humanLine: string): void {
  context.print(context.json ? renderJson(view) : `${humanLine}\n`);
}

export function replicaWord(count: number): string {
  return count === 1 ? '1 replica' : `${count} replicas`;
}

/** REPLICAS shows in-sync/total so a degraded volume stands out. */
function replicaSummary(view: VolumeView): string {
  const inSync = view.replicas.filter((replica) => replica.state === 'in-sync').length;
  return `${inSync}/${view.replicaCount}`;
}

/** `rebuilding 37% (1.5GiB of 4GiB)` while a catch-up runs on the owner. */
export function replicaLine(replica: ReplicaView): string {
  const rebuild = replica.rebuild;
  // A replica out of the set says how old its data is (stale ones are never served).
  const state = replica.state !== 'in-sync' && replica.dataGeneration !== undefined ? `${replica.state} (data generation ${replica.dataGeneration})` : replica.state;
  if (rebuild === undefined || rebuild.done) return state;
  const percent = rebuild.totalBytes === 0 ? 100 : Math.floor((rebuild.copiedBytes * 100) / rebuild.totalBytes);
  return `${state} ${percent}% (${formatSize(rebuild.copiedBytes)} of ${formatSize(rebuild.totalBytes)})`;
}

function volumeRow(view: VolumeView): string[] {
  return [
    view.name,
    formatSize(view.sizeBytes),
    replicaSummary(view),
    view.state,
    view.attachedTo ?? '-',
    formatSize(view.allocatedBytes),
  ];
}

function volumeDetails(view: VolumeView): [string, string][] {
  return [
    ['name', view.name],
    ['id', view.id],
    ['size', `${formatSize(view.sizeBytes)} (${view.sizeBytes} bytes)`],
    ['used', `${formatSize(view.allocatedBytes)} (${view.allocatedBytes} bytes)`],
    ['state', view.state],
    ['replicas', `${replicaSummary(view)} in sync`],
    ...view.replicas.map((replica): [string, string] => [`  ${replica.nodeId}`, replicaLine(replica)]),
    ['attached', view.attachedTo ?? '-'],
    ['generation', String(view.generation)],
    ['replica grace', formatDurationMs(view.graceMs)],
    ['connections', String(view.connections)],
    ['iscsi chap', chapDescription(view)],
    ['snapshots', view.snapshots === undefined || view.snapshots.length === 0 ? '-' : view.snapshots.join(', ')],
    ['created', view.createdAt],
  ];
}
