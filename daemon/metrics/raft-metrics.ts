import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** What the metrics read of this node's Raft (consensus/node/raft-node.ts, daemon/cluster/raft-command-log.ts). */
export interface RaftMetricsSource {
  /** Read at scrape time. */
  readonly status: () => { readonly term: number; readonly commitIndex: number; readonly appliedIndex: number; readonly role: string };
  /** Monotonic count of leader changes seen by this node (RaftNode.leaderChanges). */
  readonly leaderChanges: () => number;
  /** Subscribe to the latency of each proposal this node made as leader (RaftCommandLog.onProposalApplied). */
  readonly onProposalApplied: (listener: (durationMs: number) => void) => () => void;
}

/** Proposal latency buckets: a synced LevelDB batch plus a quorum round trip, 100 µs to 10 s. */
export const PROPOSAL_BUCKETS_SECONDS: readonly number[] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * Raft's health from this node's point of view (issue 6 "Raft term, commit
 * and applied index, leader changes, proposal latency"). Gauges read the
 * node's status at scrape time; the Raft core is never touched (no I/O there).
 * The commit-to-apply lag is commit_index - applied_index in PromQL.
 * Returns an unsubscribe for the proposal observer.
 */
export function registerRaftMetrics(registry: Registry, source: RaftMetricsSource): () => void {
  const gauge = (name: string, help: string, read: () => number): void => {
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  };
  gauge('plinth_raft_term', 'Current Raft term on this node', () => source.status().term);
  gauge('plinth_raft_commit_index', 'Highest Raft log index known committed on this node', () => source.status().commitIndex);
  gauge('plinth_raft_applied_index', 'Highest Raft log index applied to the cluster state on this node', () => source.status().appliedIndex);
  gauge('plinth_raft_is_leader', '1 when this node is the Raft leader, else 0', () => (source.status().role === 'leader' ? 1 : 0));
  let reportedChanges = 0;
  new Counter({
    name: 'plinth_raft_leader_changes_total',
    help: 'Times this node saw a new Raft leader since it started',
    registers: [registry],
    collect() {
      // A counter only goes up: add what happened since the last scrape.
      const changes = source.leaderChanges();
      if (changes > reportedChanges) this.inc(changes - reportedChanges);
      reportedChanges = Math.max(reportedChanges, changes);
    },
  });
  const proposals = new Histogram({
    name: 'plinth_raft_proposal_duration_seconds',
    help: 'From proposing a command as the leader to applying it on this node (commit + apply)',
    buckets: [...PROPOSAL_BUCKETS_SECONDS],
    registers: [registry],
  });
  return source.onProposalApplied((durationMs) => proposals.observe(durationMs / 1000));
}
