#!/usr/bin/env node
/**
 * The `plinth` command: a thin shell over runCli (run-cli.ts), which holds
 * all behaviour so tests can drive it without spawning a process.
 */
import { runCli } from './run-cli.js';

process.exitCode = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  cwd: process.cwd(),
});
