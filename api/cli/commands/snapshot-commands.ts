import { formatSize } from '../../../common/sizes.js';
import type { SnapshotView } from '../../../daemon/control-plane.js';
import { CliUsageError } from '../cli-usage-error.js';
import { renderJson, renderTable } from '../table.js';
import { argAt, type CommandSpec } from './command-spec.js';
import { replicaWord } from './volume.js';

/**
 * Issue 8 (docs/snapshots.md): `plinth snapshot create|ls|rm`,
 * `plinth volume clone SRC@SNAP NEW` and `plinth volume revert VOL SNAP`.
 */
export const snapshotCommands: readonly CommandSpec[] = [
  {
    noun: 'snapshot', verbs: ['create'], args: ['VOLUME', 'SNAPSHOT'], options: [], requiredOptions: [],
    synopsis: 'snapshot create VOLUME SNAPSHOT',
    summary: 'take a crash-consistent snapshot (export it read-only as VOLUME@SNAPSHOT)',
    async run(context, args) {
      const view = await context.client.createSnapshot(argAt(args, 0), argAt(args, 1));
      context.print(context.json ? renderJson(view) : `created snapshot ${view.volume}@${view.name} on ${view.holders.join(', ')}\n`);
    },
  },
  {
    noun: 'snapshot', verbs: ['create-group'], args: ['SNAPSHOT', 'VOLUME,VOLUME,...'], options: [], requiredOptions: [],
    synopsis: 'snapshot create-group SNAPSHOT VOLUME,VOLUME,...',
    summary: 'one consistent snapshot across volumes (e.g. a database\'s data and WAL)',
    async run(context, args) {
      const volumes = argAt(args, 1).split(',').filter((name) => name !== '');
      if (volumes.length === 0) throw new CliUsageError('"snapshot create-group" needs at least one volume');
      const view = await context.client.createSnapshotGroup(argAt(args, 0), volumes);
      context.print(context.json ? renderJson(view) : `created group snapshot ${view.name} (${view.groupId}) of ${view.snapshots.map((snapshot) => snapshot.volume).join(', ')}\n`);
    },
  },
  {
    noun: 'snapshot', verbs: ['ls', 'list'], args: ['VOLUME'], options: [], requiredOptions: [],
    synopsis: 'snapshot ls VOLUME',
    summary: 'list a volume\'s snapshots, oldest first, with the space they hold',
    async run(context, args) {
      const views = await context.client.listSnapshots(argAt(args, 0));
      context.print(context.json ? renderJson({ snapshots: views }) : renderTable(['NAME', 'CREATED', 'SIZE', 'HOLDERS', 'EXCLUSIVE', 'SHARED'], views.map(snapshotRow)));
    },
  },
  {
    noun: 'snapshot', verbs: ['rm', 'delete'], args: ['VOLUME', 'SNAPSHOT'], options: [], requiredOptions: [],
    synopsis: 'snapshot rm VOLUME SNAPSHOT',
    summary: 'delete a snapshot (every holder frees its space)',
    async run(context, args) {
      const [volume, snapshot] = [argAt(args, 0), argAt(args, 1)];
      await context.client.deleteSnapshot(volume, snapshot);
      context.print(context.json ? renderJson({ volume, snapshot, deleted: true }) : `removed snapshot ${volume}@${snapshot}\n`);
    },
  },
  {
    noun: 'volume', verbs: ['clone'], args: ['SOURCE@SNAPSHOT', 'NAME'], options: [], requiredOptions: [],
    synopsis: 'volume clone SOURCE@SNAPSHOT NAME',
    summary: 'create a writable volume from a snapshot (shares its data until written)',
    async run(context, args) {
      const source = argAt(args, 0);
      const at = source.lastIndexOf('@');
      if (at <= 0 || at === source.length - 1) throw new CliUsageError(`"volume clone" needs SOURCE@SNAPSHOT, got ${JSON.stringify(source)}`);
      const view = await context.client.cloneVolume(source.slice(0, at), source.slice(at + 1), argAt(args, 1));
      context.print(context.json ? renderJson(view) : `created volume ${view.name} from ${source} (${formatSize(view.sizeBytes)}, ${replicaWord(view.replicaCount)})\n`);
    },
  },
  {
    noun: 'volume', verbs: ['revert'], args: ['NAME', 'SNAPSHOT'], options: [], requiredOptions: [],
    synopsis: 'volume revert NAME SNAPSHOT',
    summary: 'make a detached volume\'s content the snapshot\'s again',
    async run(context, args) {
      const view = await context.client.revertVolume(argAt(args, 0), argAt(args, 1));
      context.print(context.json ? renderJson(view) : `reverted volume ${view.name} to ${argAt(args, 1)} (generation ${view.generation})\n`);
    },
  },
];

function snapshotRow(view: SnapshotView): string[] {
  const space = view.space;
  return [
    view.name,
    view.createdAt,
    formatSize(view.sizeBytes),
    view.holders.join(','),
    space === null ? '-' : formatSize(space.exclusiveBytes),
    space === null ? '-' : formatSize(space.sharedBytes),
  ];
}
