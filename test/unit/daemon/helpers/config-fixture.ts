import { PlinthError } from '../../../../common/plinth-error.js';
import type { Config } from '../../../../daemon/config/config-types.js';
import { resolveConfig, type ConfigInput } from '../../../../daemon/config/resolve-config.js';

/** Config resolution with argv, env and config files in memory (daemon/config/resolve-config.ts), for the config tests. */

const noFile = (path: string): string => {
  throw new Error(`ENOENT: no such file or directory, open '${path}'`);
};

export function configInput(argv: string[], env: Record<string, string> = {}, files: Record<string, string> = {}): ConfigInput {
  return { argv, env, readConfigFile: (path) => files[path] ?? noFile(path) };
}

/** The config the daemon would run with; throws on a refusal. */
export function run(argv: string[], env: Record<string, string> = {}, files: Record<string, string> = {}): Config {
  const outcome = resolveConfig(configInput(argv, env, files));
  if (outcome instanceof PlinthError) throw outcome;
  if (outcome.action !== 'run') throw new Error(`expected run, got ${outcome.action}`);
  return outcome.config;
}

/** The refusal, which must happen. */
export function refusal(argv: string[], env: Record<string, string> = {}, files: Record<string, string> = {}): PlinthError {
  const outcome = resolveConfig(configInput(argv, env, files));
  if (!(outcome instanceof PlinthError)) throw new Error('expected a CONFIG_INVALID refusal');
  return outcome;
}
