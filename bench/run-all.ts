/**
 * `npm run bench`: every benchmark in turn, each in its own process (so one
 * cannot skew the next through heap or JIT state), with default flags.
 * Benchmarks not built yet are listed and skipped.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const BENCHMARKS = ['nbd-bench.js', 'raft-bench.js', 'cluster-bench.js', 'iscsi-bench.js'] as const;

function runNode(scriptPath: string): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [scriptPath], { stdio: 'inherit' });
    child.once('error', reject);
    child.once('exit', (code) => resolve(code));
  });
}

async function main(): Promise<void> {
  let failures = 0;
  for (const name of BENCHMARKS) {
    const scriptPath = fileURLToPath(new URL(`./${name}`, import.meta.url));
    if (!existsSync(scriptPath)) {
      process.stdout.write(`bench: ${name} not built, skipped\n`);
      continue;
    }
    process.stdout.write(`\n== ${name}\n`);
    const code = await runNode(scriptPath);
    if (code !== 0) {
      process.stderr.write(`bench: ${name} exited ${code}\n`);
      failures += 1;
    }
  }
  process.exitCode = failures === 0 ? 0 : 1;
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
