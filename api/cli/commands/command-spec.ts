import type { PlinthClient } from '../../client/plinth-client.js';
import type { CommandOptionName, CommandOptions } from '../parse-args.js';

/** What a command gets: the client, the output mode and a writer for stdout. */
export interface CommandContext {
  readonly client: PlinthClient;
  readonly json: boolean;
  print(text: string): void;
}

/**
 * One `plinth <noun> <verb>` command, declared as data so the dispatcher
 * checks arity and options once and the usage text is generated from the
 * same list.
 */
export interface CommandSpec {
  readonly noun: string;
  /** The first verb is canonical; the rest are aliases. */
  readonly verbs: readonly string[];
  /** Names of the positional arguments after the verb, e.g. ['NAME']. */
  readonly args: readonly string[];
  readonly options: readonly CommandOptionName[];
  readonly requiredOptions: readonly CommandOptionName[];
  /** e.g. "volume create NAME --size SIZE [--replicas N]" */
  readonly synopsis: string;
  readonly summary: string;
  run(context: CommandContext, args: readonly string[], options: CommandOptions): Promise<void>;
}

/** The dispatcher has checked arity; this keeps noUncheckedIndexedAccess honest. */
export function argAt(args: readonly string[], index: number): string {
  const value = args[index];
  if (value === undefined) throw new Error(`argument ${index} missing after arity check`);
  return value;
}

/** Like argAt for options listed in requiredOptions. */
export function requiredOption(value: string | undefined, name: CommandOptionName): string {
  if (value === undefined) throw new Error(`--${name} missing after required-option check`);
  return value;
}
