/**
 * Liveness figure: how long, in election timeouts, until a new leader exists
 * after the leader crashes, on a calm network (thesis §9.3 measures the same).
 */
import { ELECTION_TIMEOUT_MS, Simulation } from './simulator.js';

export interface FailoverSample {
  readonly seed: number;
  /** null if no new leader appeared within the bound. */
  readonly electionTimeouts: number | null;
}

const SETTLE_MS = 1000;
const BOUND_MS = 20 * ELECTION_TIMEOUT_MS;

export function measureFailover(seed: number): FailoverSample {
  const sim = new Simulation({ seed }, { voters: 3 + (seed % 3), spares: 0 });
  for (const node of sim.nodes.values()) sim.startNode(node);
  sim.queue.runUntil(SETTLE_MS);
  const leader = [...sim.nodes.values()].find((n) => n.core?.status().role === 'leader');
  if (leader === undefined) return { seed, electionTimeouts: null };
  const crashAtMs = sim.queue.nowMs;
  const oldTerm = leader.core?.status().term ?? 0;
  sim.crashNode(leader);
  const sightingsBefore = sim.leaderSightings.length;
  const newLeader = (): boolean => sim.leaderSightings.slice(sightingsBefore).some((s) => s.term > oldTerm);
  sim.queue.runUntil(crashAtMs + BOUND_MS, newLeader);
  const sighting = sim.leaderSightings.slice(sightingsBefore).find((s) => s.term > oldTerm);
  return { seed, electionTimeouts: sighting === undefined ? null : (sighting.atMs - crashAtMs) / ELECTION_TIMEOUT_MS };
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, rank)] ?? NaN;
}

export function summarizeFailover(samples: readonly FailoverSample[]): {
  count: number;
  medianElectionTimeouts: number;
  p99ElectionTimeouts: number;
  maxElectionTimeouts: number;
} {
  const values = samples.map((s) => s.electionTimeouts).filter((v): v is number => v !== null).sort((a, b) => a - b);
  return {
    count: values.length,
    medianElectionTimeouts: percentile(values, 50),
    p99ElectionTimeouts: percentile(values, 99),
    maxElectionTimeouts: values[values.length - 1] ?? NaN,
  };
}
