/**
 * CLI entry of the chaos soak (issue 7): `npm run soak -- --minutes N
 * --seed S [--nodes 3|5] [--faults kill,stop,failpoint,power-cut,disk]
 * [--volumes N] [--log-dir DIR] [--daemon-log-level L]`. Prints the
 * summary; exits 1 on any violation (with the seed and the replay command),
 * 2 on a usage error. Everything it started (daemons, workers, temp dirs)
 * goes at the end and on SIGINT/SIGTERM.
 */
import { pino } from 'pino';
import type { TeardownHost } from '../helpers/daemon-harness.js';
import { isUsageError, parseSoakArgs } from './soak-args.js';
import { failures, formatSummary } from './soak-report.js';
import { runSoak } from './soak-run.js';

/** Teardown functions run last-registered first, like tap's. */
class Teardowns implements TeardownHost {
  readonly #fns: Array<() => unknown> = [];

  teardown(fn: () => unknown): void {
    this.#fns.push(fn);
  }

  async runAll(): Promise<void> {
    for (const fn of this.#fns.splice(0).reverse()) await fn();
  }
}

async function main(): Promise<number> {
  const logger = pino({ level: process.env['SOAK_LOG_LEVEL'] ?? 'info' }, pino.destination(2));
  let options;
  try {
    options = parseSoakArgs(process.argv.slice(2), Date.now() % 1_000_000);
  } catch (err) {
    if (!isUsageError(err)) throw err;
    process.stderr.write(`soak: ${err.message}\n`);
    return 2;
  }
  const teardowns = new Teardowns();
  const interrupt = (signal: NodeJS.Signals): void => {
    logger.warn({ signal, seed: options.seed }, 'interrupted: cleaning up');
    void teardowns.runAll().finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  logger.info({ options }, 'soak starting');
  try {
    const summary = await runSoak(options, teardowns, logger);
    process.stdout.write(`${formatSummary(summary)}\n  logs: ${options.logDir}\n`);
    return failures(summary).length === 0 ? 0 : 1;
  } catch (err) {
    logger.error({ err, seed: options.seed }, 'soak aborted');
    process.stdout.write(`soak seed ${options.seed} aborted: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  } finally {
    await teardowns.runAll();
  }
}

process.exitCode = await main();
