/**
 * Raft commit throughput and latency of a 3-process cluster on loopback
 * (`npm run bench:raft`). Each proposer sends one put at a time to the leader
 * over the fixture's control channel and waits for the applied result, so a
 * latency is the full path: client → leader → replicate + fsync on a majority
 * → apply → reply. Proposals arriving in the same event-loop turn share one
 * log entry and one fsync (consensus/node/command-batch.ts).
 *
 *   node dist/bench/raft-bench.js [--seconds 5] [--proposers 1,64]
 */
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { ControlClient, ProcessCluster } from '../test/integration/fixtures/raft-process-cluster.js';
import { putViaLeader } from '../test/integration/fixtures/cluster-ops.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    proposers: { type: 'string', default: '1,64' },
  },
});

interface Result {
  readonly proposers: number;
  readonly committed: number;
  readonly failed: number;
  readonly seconds: number;
  readonly latenciesMs: Float64Array;
}

async function runScenario(cluster: ProcessCluster, leader: string, proposers: number, seconds: number): Promise<Result> {
  const port = (await cluster.status(leader)) === null ? 0 : cluster.members.get(leader)?.controlPort ?? 0;
  const clients = await Promise.all(Array.from({ length: proposers }, () => ControlClient.connect(port)));
  const latencies: number[] = [];
  let failed = 0;
  const startedAt = performance.now();
  const deadline = startedAt + seconds * 1000;
  await Promise.all(
    clients.map(async (client, p) => {
      for (let i = 0; performance.now() < deadline; i++) {
        const sentAt = performance.now();
        const reply = await client.request({ op: 'put', key: `p${p}-${i % 1000}`, value: 'x'.repeat(32) });
        if (reply.ok) latencies.push(performance.now() - sentAt);
        else failed++;
      }
    }),
  );
  const elapsed = (performance.now() - startedAt) / 1000;
  for (const client of clients) client.close();
  return { proposers, committed: latencies.length, failed, seconds: elapsed, latenciesMs: Float64Array.from(latencies).sort() };
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

function printTable(results: readonly Result[]): void {
  const rows = results.map((r) => [
    String(r.proposers),
    String(r.committed),
    String(r.failed),
    Math.round(r.committed / r.seconds).toLocaleString('en-US'),
    percentile(r.latenciesMs, 50).toFixed(2),
    percentile(r.latenciesMs, 99).toFixed(2),
  ]);
  const header = ['proposers', 'committed', 'failed', 'proposals/s', 'p50 ms', 'p99 ms'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => c.padStart(widths[i] ?? 0)).join('  ');
  console.log(line(header));
  for (const row of rows) console.log(line(row));
}

async function main(): Promise<void> {
  const cluster = await ProcessCluster.create(50);
  try {
    await cluster.bootstrap(['b1', 'b2', 'b3']);
    const leader = await cluster.waitForLeader(10_000);
    await putViaLeader(cluster, 'warm-up', 'x', Date.now() + 5000);
    const results: Result[] = [];
    for (const proposers of (args.proposers ?? '1,64').split(',').map(Number)) {
      results.push(await runScenario(cluster, leader, proposers, Number(args.seconds)));
    }
    const load = loadavg().map((l) => l.toFixed(1)).join(' ');
    console.log(`raft-bench: 3 processes on loopback, leader ${leader}, ${args.seconds} s per row, 32-byte values, fsync per batch; load average ${load}`);
    printTable(results);
  } finally {
    await cluster.close();
  }
}

await main();
