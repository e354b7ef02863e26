/**
 * The run shell the benchmarks share: start every target (stopping the
 * started ones if a later one fails) in a work dir cleaned up after, alternate which target goes first
 * each round, and run a bench file's main() only when it is the program.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

/** Start `names` in order; if one fails, stop those already started and rethrow. */
export async function startAll<Name, Target extends { stop(): Promise<void> }>(
  names: readonly Name[],
  start: (name: Name) => Promise<Target>,
): Promise<Target[]> {
  const targets: Target[] = [];
  try {
    for (const name of names) targets.push(await start(name));
    return targets;
  } catch (err: unknown) {
    await Promise.all(targets.map((target) => target.stop()));
    throw err;
  }
}

/**
 * Start targets in a work dir (`workDir`, or a fresh temp dir named
 * `tempPrefix`...), run `body` on them, then stop them and remove a temp
 * dir, whatever happened.
 */
export async function withTargets<Target extends { stop(): Promise<void> }, Result>(
  workDir: string | undefined,
  tempPrefix: string,
  start: (workDir: string) => Promise<Target[]>,
  body: (targets: readonly Target[]) => Promise<Result>,
): Promise<Result> {
  const dir = workDir ?? (await mkdtemp(join(tmpdir(), tempPrefix)));
  await mkdir(dir, { recursive: true });
  try {
    const targets = await start(dir);
    try {
      return await body(targets);
    } finally {
      await Promise.all(targets.map((target) => target.stop()));
    }
  } finally {
    if (workDir === undefined) await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Run every item once per round, one at a time, reversing the order every
 * other round so drift (page cache, thermal, neighbours) does not always
 * favour the same one.
 */
export async function forEachAlternating<Item>(
  rounds: number,
  items: readonly Item[],
  run: (item: Item, round: number) => Promise<void>,
): Promise<void> {
  for (let round = 0; round < rounds; round += 1) {
    const ordered = round % 2 === 0 ? items : [...items].reverse();
    for (const item of ordered) await run(item, round);
  }
}

/** Run `main` when `moduleUrl` is the script node was started with; print a failure as `name: message` and exit 1. */
export function runIfMain(moduleUrl: string, name: string, main: () => Promise<void>): void {
  const invokedPath = process.argv[1];
  if (invokedPath === undefined || pathToFileURL(resolve(invokedPath)).href !== moduleUrl) return;
  main().catch((err: unknown) => {
    process.stderr.write(`${name}: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
