#!/usr/bin/env -S node --initial-old-space-size=256
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { armFailpointsFromEnv } from '../../common/failpoints/arm-failpoints.js';
import { failpoints } from '../../common/failpoints/failpoints.js';
import { isPlinthError, toError } from '../../common/plinth-error.js';
import { resolveConfig } from '../config/resolve-config.js';
import { createLogger } from '../logging/create-logger.js';
import { LogRing } from '../logging/log-ring.js';
import { startDaemon, type ClusterTuning, type RunningDaemon } from '../main.js';
import { readDaemonVersion } from '../version.js';
import { missingNodeFlags } from './node-flags.js';

const USAGE = `Usage: plinthd [--config FILE] [--data-dir DIR] [--node-id ID] [--api H:P] [--peer H:P]
               [--nbd H:P] [--iscsi H:P] [--disk PATH[:SIZE]]... [--join H:P]
               [--log-level LEVEL] [--extent-size SIZE]
               [--iscsi-chap-user U --iscsi-chap-secret-file F
                [--iscsi-chap-target-user U --iscsi-chap-target-secret-file F]]
               [--tls auto|on|off] [--join-token T] [--nbd-tls required|optional]
               [--nbd-tls-client-certs required|off]
               [--tls-cert-file F --tls-key-file F --tls-ca-file F]

Every flag is also a key of the YAML config file (data-dir: /var/lib/plinth)
and an environment variable (PLINTH_DATA_DIR); flags win over the
environment, which wins over the file. See systemd/plinth.yaml.
The join token is a secret: prefer PLINTH_JOIN_TOKEN or the YAML key to the
flag, which shows in ps (docs/security.md).
`;

/**
 * The process shell around startDaemon: config, exit codes and signals.
 * Exit 0 after a clean SIGTERM/SIGINT stop; exit 1 on a fatal start-up error
 * (one clear line on stderr) or when a second signal forces the exit.
 */
async function main(): Promise<void> {
  const version = readDaemonVersion();
  const outcome = resolveConfig({
    argv: process.argv.slice(2),
    env: process.env,
    readConfigFile: (path) => readFileSync(path, 'utf8'),
  });
  if (isPlinthError(outcome)) return fail(outcome);
  if (outcome.action === 'help') return void process.stdout.write(USAGE);
  if (outcome.action === 'version') return void process.stdout.write(`plinthd ${version}\n`);
  // The recent lines, kept for `plinth support bundle` (stdout itself goes to journald).
  const logRing = new LogRing();
  const logger = createLogger(outcome.config.logLevel, undefined, { ring: logRing });
  const shutdown = new AbortController();
  let signals = 0;
  let daemon: RunningDaemon | null = null;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals += 1;
    if (signals > 1) {
      logger.warn({ signal }, 'second signal: forcing exit');
      process.exit(1);
    }
    logger.info({ signal }, 'stopping');
    shutdown.abort();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    // Test knobs, deliberately not config keys (parse-env.ts ignores other PLINTH_* names): issue 7.
    armFailpointsFromEnv(failpoints, process.env, logger);
    const missing = missingNodeFlags(process.execArgv);
    if (missing.length > 0) logger.warn({ missing }, 'node was started without plinthd\'s V8 flags (node-flags.ts): expect major-GC storms under heavy I/O');
    const testApi = process.env['PLINTH_TEST_API'] === '1';
    if (testApi) logger.warn('PLINTH_TEST_API=1: the test-only API (/v1/debug/failpoints) is served');
    daemon = await startDaemon({ config: outcome.config, version, cluster: clusterTuningFromEnv(process.env), testApi }, { logger, logRing });
  } catch (err) {
    return fail(err, logger);
  }
  if (!shutdown.signal.aborted) await new Promise((resolve) => shutdown.signal.addEventListener('abort', resolve, { once: true }));
  await stop(daemon, logger);
}

/**
 * Cluster timing knobs for tests and operators who need faster failure
 * detection: PLINTH_RAFT_TICK_MS (default 100), PLINTH_NODE_DOWN_AFTER_MS
 * (default 5000). Positive integers; anything else is ignored with the default.
 */
function clusterTuningFromEnv(env: NodeJS.ProcessEnv): Partial<ClusterTuning> {
  const tuning: { raftTickMs?: number; nodeDownAfterMs?: number } = {};
  const tick = Number(env['PLINTH_RAFT_TICK_MS']);
  if (Number.isSafeInteger(tick) && tick >= 10 && tick <= 10_000) tuning.raftTickMs = tick;
  const down = Number(env['PLINTH_NODE_DOWN_AFTER_MS']);
  if (Number.isSafeInteger(down) && down >= 500 && down <= 3_600_000) tuning.nodeDownAfterMs = down;
  return tuning;
}

async function stop(daemon: RunningDaemon, logger: Logger): Promise<void> {
  try {
    await daemon.close();
  } catch (err) {
    logger.error({ err }, 'plinthd stopped with errors');
    process.exitCode = 1;
    return;
  }
  logger.info('plinthd stopped');
  process.exitCode = 0;
}

function fail(err: unknown, logger?: Logger): never {
  const error = toError(err);
  logger?.fatal({ err: error }, 'plinthd cannot start');
  const code = isPlinthError(error) ? ` (${error.code})` : '';
  process.stderr.write(`plinthd: ${error.message}${code}\n`);
  // startDaemon already closed whatever it had opened; stderr and pino's
  // stdout destination write synchronously, so nothing is lost by exiting now.
  process.exit(1);
}

main().catch((err: unknown) => {
  process.stderr.write(`plinthd: ${toError(err).stack ?? String(err)}\n`);
  process.exit(1);
});
