/**
 * The V8 flags plinthd runs with. plinthd.js's shebang carries them (so
 * `npx plinthd` and the systemd unit have them), and everything of ours
 * that starts plinthd with `node` passes them: `npm start`, the test
 * harness, the benchmarks. V8 reads them only at start-up;
 * v8.setFlagsFromString() at run time does not take (measured).
 *
 * --initial-old-space-size=256: the old generation's allocation limit never
 * drops below 256 MB. Why (perf, iSCSI 1 MiB writes at depth 8): every
 * socket read is a new ArrayBuffer, ~600 MB/s of them, and V8 counts
 * ArrayBuffer memory allocated since the last full GC against that limit.
 * With the default limit (about twice the live heap, ~50 MB here) a
 * scavenge's worth of socket buffers used up the headroom, so nearly every
 * scavenge started a major GC: 77-142 per 2,500 writes, about half of the
 * daemon's CPU. With the floor: none in 9 runs, each run 2-3x faster, RSS
 * ~180 MB (docs/data-path.md "Garbage collection").
 */
export const PLINTHD_NODE_FLAGS: readonly string[] = ['--initial-old-space-size=256'];

/** The flags of PLINTHD_NODE_FLAGS this process was started without. */
export function missingNodeFlags(execArgv: readonly string[]): string[] {
  return PLINTHD_NODE_FLAGS.filter((flag) => !execArgv.includes(flag));
}
