/**
 * CLI: npm run sim -- --seeds N [--from S] [--canary NAME] [--verbose] [--liveness]
 * Runs N seeds from S, prints each failing seed with its replay command, and
 * ends with "N passed, M failed"; exits non-zero on any failure.
 */
import { PlinthError } from '../../common/plinth-error.js';
import type { RaftCanary } from '../../consensus/raft/index.js';
import { measureFailover, summarizeFailover } from './failover-liveness.js';
import { runSeed } from './simulator.js';

interface CliArgs {
  seeds: number;
  from: number;
  canary?: RaftCanary;
  verbose: boolean;
  liveness: boolean;
}

function parseArgs(argv: readonly string[]): CliArgs {
  const args: CliArgs = { seeds: 100, from: 1, verbose: false, liveness: false };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (flag === '--seeds' && value !== undefined) args.seeds = Number.parseInt(value, 10), i++;
    else if (flag === '--from' && value !== undefined) args.from = Number.parseInt(value, 10), i++;
    else if (flag === '--canary' && (value === 'commit-previous-term' || value === 'vote-without-log-check')) args.canary = value, i++;
    else if (flag === '--verbose') args.verbose = true;
    else if (flag === '--liveness') args.liveness = true;
    else throw new PlinthError('INVALID_ARGUMENT', `unknown or incomplete argument: ${String(flag)}`);
  }
  if (!Number.isInteger(args.seeds) || args.seeds < 1 || !Number.isInteger(args.from)) throw new PlinthError('INVALID_ARGUMENT', '--seeds and --from take integers');
  return args;
}

function main(): void {
  const args = parseArgs(process.argv.slice(2));
  if (args.liveness) {
    const samples = [];
    for (let seed = args.from; seed < args.from + args.seeds; seed++) samples.push(measureFailover(seed));
    const summary = summarizeFailover(samples);
    process.stdout.write(
      `time to new leader after leader crash, in election timeouts (${summary.count} seeds): ` +
        `median ${summary.medianElectionTimeouts.toFixed(2)}, p99 ${summary.p99ElectionTimeouts.toFixed(2)}, max ${summary.maxElectionTimeouts.toFixed(2)}\n`,
    );
    process.exitCode = summary.count === args.seeds ? 0 : 1;
    return;
  }
  let passed = 0;
  let failed = 0;
  const canaryFlag = args.canary === undefined ? '' : ` --canary ${args.canary}`;
  for (let seed = args.from; seed < args.from + args.seeds; seed++) {
    const result = runSeed({ seed, verbose: args.verbose, ...(args.canary === undefined ? {} : { canary: args.canary }) });
    if (result.ok) {
      passed++;
      if (args.verbose) process.stdout.write(`seed ${seed} passed ${JSON.stringify(result.stats)}\n`);
      continue;
    }
    failed++;
    process.stdout.write(`seed ${seed} FAILED:\n  ${result.failures.join('\n  ')}\n`);
    process.stdout.write(`  replay: npm run sim -- --seeds 1 --from ${seed}${canaryFlag} --verbose\n`);
  }
  process.stdout.write(`${passed} passed, ${failed} failed\n`);
  process.exitCode = failed === 0 ? 0 : 1;
}

main();
