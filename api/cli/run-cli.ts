import { randomUUID } from 'node:crypto';
import { PlinthApiError, PlinthClient, PlinthConnectionError } from '../client/plinth-client.js';
import { CliSetupError, CliUsageError } from './cli-usage-error.js';
import { readCliVersion } from './cli-version.js';
import { findCommand, isKnownNoun, usageText } from './command-table.js';
import type { CommandSpec } from './commands/command-spec.js';
import { resolveApiUrl, resolveCa, resolveToken, type CliEnv } from './connection-settings.js';
import { parseCommandLine, parseReplicaCount, type ParsedCommandLine } from './parse-args.js';

export interface CliWriter {
  write(text: string): unknown;
}

/** Everything the CLI touches, injected so tests run it without spawning a process. */
export interface CliIo {
  readonly stdout: CliWriter;
  readonly stderr: CliWriter;
  readonly env: CliEnv;
  readonly cwd: string;
}

export const EXIT_OK = 0;
export const EXIT_ERROR = 1;
export const EXIT_USAGE = 2;

/** Runs one `plinth` invocation and returns its exit code; never throws. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  // One id per invocation, sent as x-request-id: the operator greps every node's log for it (docs/operations.md).
  const requestId = randomUUID();
  try {
    return await runParsed(parseCommandLine(argv), io, requestId);
  } catch (err: unknown) {
    return reportFailure(err, io, requestId);
  }
}

async function runParsed(parsed: ParsedCommandLine, io: CliIo, requestId: string): Promise<number> {
  const [noun, verb, ...args] = parsed.positionals;
  if (parsed.global.help || noun === 'help' || verb === 'help') {
    io.stdout.write(usageText());
    return EXIT_OK;
  }
  if (parsed.global.version) {
    io.stdout.write(`plinth ${await readCliVersion()}\n`);
    return EXIT_OK;
  }
  if (noun === undefined) throw new CliUsageError('no command given');
  if (!isKnownNoun(noun)) throw new CliUsageError(`unknown command "${noun}"`);
  if (verb === undefined) throw new CliUsageError(`"${noun}" needs a verb`);
  const spec = findCommand(noun, verb);
  if (spec === undefined) throw new CliUsageError(`unknown command "${noun} ${verb}"`);
  checkInvocation(spec, args, parsed);

  const ca = await resolveCa(parsed.global, io.env, io.cwd);
  const client = new PlinthClient({
    baseUrl: resolveApiUrl(parsed.global, io.env, ca !== undefined),
    ...(ca === undefined ? {} : { ca }),
    token: await resolveToken(parsed.global, io.env, io.cwd),
    requestId,
  });
  await spec.run({ client, json: parsed.global.json, print: (text) => io.stdout.write(text) }, args, parsed.options);
  return EXIT_OK;
}

/** Arity and options, checked before any network call so usage errors never half-run a command. */
function checkInvocation(spec: CommandSpec, args: readonly string[], parsed: ParsedCommandLine): void {
  const name = `${spec.noun} ${spec.verbs[0] ?? ''}`;
  if (args.length !== spec.args.length) {
    const expected = spec.args.length === 0 ? 'no arguments' : spec.args.join(' ');
    throw new CliUsageError(`"${name}" takes ${expected}: ${spec.synopsis}`);
  }
  for (const option of parsed.givenOptions) {
    if (!spec.options.includes(option)) throw new CliUsageError(`"${name}" does not take --${option}`);
  }
  for (const option of spec.requiredOptions) {
    if (!parsed.givenOptions.includes(option)) throw new CliUsageError(`"${name}" needs --${option}: ${spec.synopsis}`);
  }
  if (parsed.options.replicas !== undefined) parseReplicaCount(parsed.options.replicas);
}

function reportFailure(err: unknown, io: CliIo, requestId: string): number {
  if (err instanceof CliUsageError) {
    io.stderr.write(`plinth: ${err.message}\n\n${usageText()}`);
    return EXIT_USAGE;
  }
  if (err instanceof PlinthApiError) {
    io.stderr.write(`plinth: ${err.message} (${err.code})\nrequest id: ${requestId}\n`);
    return EXIT_ERROR;
  }
  if (err instanceof PlinthConnectionError || err instanceof CliSetupError) {
    io.stderr.write(`plinth: ${err.message}\n`);
    return EXIT_ERROR;
  }
  // A bug in the CLI itself: say so, with the stack, rather than pretending it was the daemon.
  const detail = err instanceof Error ? err.stack ?? err.message : String(err);
  io.stderr.write(`plinth: unexpected error: ${detail}\n`);
  return EXIT_ERROR;
}
