/**
 * Options and injected modules of the Raft node runner, with defaults.
 */
import type { Logger } from 'pino';
import type { Prng } from '../../common/prng.js';
import type { Message, RaftConfig } from '../raft/types.js';
import type { RaftDb } from '../storage/raft-db.js';
import type { PeerAddress, Transport } from '../transport/transport-types.js';
import type { StateMachine } from './state-machine.js';

export interface RaftNodeOptions {
  readonly nodeId: string;
  /**
   * Voters of a brand-new cluster (must include nodeId). Used only when the
   * storage is empty; without it an empty node waits to be added by a leader.
   */
  readonly bootstrapVoters?: readonly string[];
  /** Peer-port addresses known up front; the replicated address book adds the rest. */
  readonly peers: ReadonlyMap<string, PeerAddress>;
  /** This node's own peer-port address (replicated so others can reach it). */
  readonly selfAddress: PeerAddress;
  /** Wall time of one Raft tick; the election timeout is electionTicks × tickMs. */
  readonly tickMs: number;
  /** Raft core limits; defaults from DEFAULT_RAFT_LIMITS. */
  readonly raft?: Partial<Omit<RaftConfig, 'id'>>;
  readonly proposalTimeoutMs: number;
  /** Bound on proposals plus reads in flight; beyond it new calls fail with BUSY. */
  readonly maxPendingRequests: number;
  /** Bound on the commands and bytes packed into one log entry. */
  readonly maxBatchCommands: number;
  readonly maxBatchBytes: number;
  /** Take a snapshot and compact the log after this many applied entries (Raft §7). */
  readonly snapshotEveryEntries: number;
  /** Aborting it shuts the node down cleanly (same as stop()). */
  readonly signal?: AbortSignal;
}

export const DEFAULT_NODE_OPTIONS = {
  tickMs: 100,
  proposalTimeoutMs: 5000,
  maxPendingRequests: 16_384,
  maxBatchCommands: 4096,
  maxBatchBytes: 512 * 1024,
  snapshotEveryEntries: 10_000,
} as const;

export interface Clock {
  nowMs(): number;
}

export interface Ticker {
  /** Call `onTick` every `intervalMs` until the returned function is called. */
  start(onTick: () => void, intervalMs: number): () => void;
}

export interface RaftNodeModules<R> {
  readonly logger: Logger;
  /** The sublevel holding this node's Raft state. */
  readonly db: RaftDb;
  readonly transport: Transport<Message>;
  readonly stateMachine: StateMachine<R>;
  /** Seeds the election-timeout randomisation (Raft §5.2). */
  readonly prng: Prng;
  readonly clock?: Clock;
  readonly ticker?: Ticker;
  /** Schedules the processing of one event-loop turn's work; default setImmediate. */
  readonly defer?: (callback: () => void) => void;
}

export const systemClock: Clock = { nowMs: () => Date.now() };

export const intervalTicker: Ticker = {
  start(onTick, intervalMs) {
    const timer = setInterval(onTick, intervalMs);
    return () => clearInterval(timer);
  },
};
