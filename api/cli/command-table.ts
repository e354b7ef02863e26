import { clusterCommands } from './commands/cluster.js';
import { clusterJoinTokenCommand } from './commands/cluster-join-token.js';
import type { CommandSpec } from './commands/command-spec.js';
import { nodeCommands } from './commands/node.js';
import { nodeDrainCommands } from './commands/node-drain.js';
import { supportCommands } from './commands/support-bundle.js';
import { tlsCommands } from './commands/tls-client-cert.js';
import { volumeCommands } from './commands/volume.js';
import { snapshotCommands } from './commands/snapshot-commands.js';
import { snapshotScheduleCommand } from './commands/snapshot-schedule.js';
import { volumeReceiveCommands } from './commands/volume-receive.js';
import { volumeSendCommand } from './commands/volume-send.js';

/** Every command, in the order the usage text lists them. */
export const ALL_COMMANDS: readonly CommandSpec[] = [
  ...clusterCommands, clusterJoinTokenCommand, ...nodeCommands, ...nodeDrainCommands, ...volumeCommands, ...snapshotCommands, volumeSendCommand, ...volumeReceiveCommands, snapshotScheduleCommand, ...supportCommands, ...tlsCommands,
];

export function findCommand(noun: string, verb: string): CommandSpec | undefined {
  return ALL_COMMANDS.find((spec) => spec.noun === noun && spec.verbs.includes(verb));
}

export function isKnownNoun(noun: string): boolean {
  return ALL_COMMANDS.some((spec) => spec.noun === noun);
}

export function usageText(): string {
  const width = Math.max(...ALL_COMMANDS.map((spec) => spec.synopsis.length)) + 3;
  const commandLines = ALL_COMMANDS.map((spec) => `  ${spec.synopsis.padEnd(width)}${spec.summary}`);
  return [
    'Usage: plinth [--api URL] [--token T | --data-dir DIR] [--json] <noun> <verb> [args]',
    '',
    'Commands:',
    ...commandLines,
    `  ${'help'.padEnd(width)}show this text`,
    '',
    'Options:',
    '  --api URL        plinthd API address (env PLINTH_API; default http://127.0.0.1:9700)',
    '  --token T        API token (env PLINTH_TOKEN)',
    '  --ca FILE        CA certificate of a TLS cluster (env PLINTH_CA; default DIR/tls/ca.crt with --data-dir)',
    '  --data-dir DIR   read the token from DIR/api-token (env PLINTH_DATA_DIR; default ./data)',
    '  --json           print raw JSON, for scripts',
    '  --version        print the version',
    '  -h, --help       show this text',
    '',
    'Sizes are bytes or binary units: 512MiB, 10GiB, 2TiB.',
    'Exit status: 0 ok, 1 error from plinthd or the connection, 2 usage error.',
    '',
  ].join('\n');
}
