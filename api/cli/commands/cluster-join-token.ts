import { renderJson } from '../table.js';
import type { CommandSpec } from './command-spec.js';

/**
 * `plinth cluster join-token` (docs/security.md "Joining"): prints the TLS
 * cluster's join token — alone on its line, so `PLINTH_JOIN_TOKEN=$(plinth
 * cluster join-token)` works — for a new node's --join-token.
 */
export const clusterJoinTokenCommand: CommandSpec = {
  noun: 'cluster', verbs: ['join-token'], args: [], options: [], requiredOptions: [],
  synopsis: 'cluster join-token',
  summary: 'the join token a new node of a TLS cluster needs (--join-token); a secret',
  async run(context) {
    const token = await context.client.joinToken();
    context.print(context.json ? renderJson({ token }) : `${token}\n`);
  },
};
