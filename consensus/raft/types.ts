/**
 * The data types of the pure Raft core: what goes in (messages, ticks,
 * proposals, the persisted state at start-up) and what comes out (the Ready).
 *
 * The core does no I/O. Its caller (the node runner, or the simulator) loops:
 *
 *   while (core.hasReady()) {
 *     const rd = core.ready();
 *     1. persist rd.snapshot (if any), then rd.entries (rd.entries[0].index may
 *        overwrite a conflicting suffix: drop every stored entry >= it first),
 *        then rd.hardState — all durably (fsync) BEFORE step 2;
 *     2. send rd.messages (never before step 1: a vote or an append ack is a
 *        promise about durable state, Raft §5.1 / Figure 2 "Persistent state");
 *     3. restore the state machine from rd.snapshot (if any), then apply
 *        rd.committedEntries in order; hand rd.readStates to waiting readers;
 *     4. core.advance(rd).
 *   }
 *
 * Only one Ready is outstanding at a time: call advance() before ready() again.
 * step()/tick()/propose() may be called between ready() and advance().
 *
 * Stability promise: these types only grow (new optional fields, new message
 * variants); existing fields are never renamed or removed.
 */

/** Node identity. Opaque non-empty string, e.g. the daemon's --node-id. */
export type NodeId = string;

/** The "no node" value in hard state and soft state. */
export const NO_NODE = null;

// ---------------------------------------------------------------------------
// Log entries and persistent state
// ---------------------------------------------------------------------------

/**
 * 'normal': application command (data may be empty: the no-op a new leader
 * appends, Raft §8). 'conf-change': data is an encoded ConfChange
 * (see conf-change.ts encodeConfChange/decodeConfChange).
 */
export type EntryType = 'normal' | 'conf-change';

export interface Entry {
  readonly index: number;
  readonly term: number;
  readonly type: EntryType;
  readonly data: Buffer;
}

/** Figure 2 "Persistent state on all servers" plus the commit index. */
export interface HardState {
  readonly term: number;
  readonly vote: NodeId | null;
  readonly commit: number;
}

/** Cluster membership. Learners receive the log but neither vote nor count (§6, thesis §4.2.1). */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

export interface SnapshotMetadata {
  /** Last log index covered by the snapshot. */
  readonly index: number;
  /** Term of the entry at `index`. */
  readonly term: number;
  /** Membership as of `index`. */
  readonly confState: ConfState;
}

export interface Snapshot {
  readonly metadata: SnapshotMetadata;
  /** Opaque state-machine image produced by the application. */
  readonly data: Buffer;
}

/**
 * Membership change, one server at a time (Raft thesis §4.1). Takes effect on
 * every node as soon as the entry is appended to its log, not when committed.
 * 'bootstrap' appears only as entry 1 of a brand-new cluster (bootstrapState()).
 */
export type ConfChange =
  | { readonly type: 'add-learner'; readonly nodeId: NodeId }
  | { readonly type: 'promote-voter'; readonly nodeId: NodeId }
  | { readonly type: 'remove-node'; readonly nodeId: NodeId }
  | { readonly type: 'bootstrap'; readonly voters: readonly NodeId[] };

/**
 * What storage hands the core at construction (after a restart or at first
 * start). `entries` are the entries after the snapshot, contiguous, starting
 * at snapshot.metadata.index + 1 (or 1 without a snapshot).
 * A node joining an existing cluster starts from emptyState(): no members,
 * so it never campaigns until the leader's log makes it a voter.
 */
export interface RaftStorageState {
  readonly hardState: HardState;
  readonly snapshot: Snapshot | null;
  readonly entries: readonly Entry[];
}

// ---------------------------------------------------------------------------
// Messages (Raft §5 RPCs, split into one-way messages like etcd-io/raft)
// ---------------------------------------------------------------------------

interface MessageBase {
  readonly from: NodeId;
  readonly to: NodeId;
  /** Sender's term (for pre-vote requests: the term it would campaign in). */
  readonly term: number;
}

/** RequestVote (§5.2) and its pre-vote twin (thesis §9.6). */
export interface VoteRequest extends MessageBase {
  readonly type: 'vote' | 'pre-vote';
  readonly lastLogIndex: number;
  readonly lastLogTerm: number;
  /** Set when campaigning because of TimeoutNow: voters ignore their leader lease (thesis §3.10). */
  readonly leadershipTransfer: boolean;
}

export interface VoteResponse extends MessageBase {
  readonly type: 'vote-response' | 'pre-vote-response';
  readonly reject: boolean;
}

/** AppendEntries (§5.3). */
export interface AppendRequest extends MessageBase {
  readonly type: 'append';
  readonly prevLogIndex: number;
  readonly prevLogTerm: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
}

export interface AppendResponse extends MessageBase {
  readonly type: 'append-response';
  readonly reject: boolean;
  /** On success: the follower's last index matching the leader. On reject: the rejected prevLogIndex. */
  readonly index: number;
  /**
   * Fast back-off hint on reject (§5.3 "the follower can include the term of
   * the conflicting entry"): the largest index <= min(prevLogIndex, lastIndex)
   * whose term <= the leader's prevLogTerm, and that term.
   */
  readonly rejectHintIndex: number;
  readonly rejectHintTerm: number;
}

/** Empty AppendEntries (§5.2). `context` carries a ReadIndex round (thesis §6.4). */
export interface HeartbeatRequest extends MessageBase {
  readonly type: 'heartbeat';
  readonly commit: number;
  readonly context: Buffer | null;
}

export interface HeartbeatResponse extends MessageBase {
  readonly type: 'heartbeat-response';
  readonly context: Buffer | null;
}

/** One chunk of InstallSnapshot (§7, Figure 13: offset, data, done). */
export interface SnapshotChunkRequest extends MessageBase {
  readonly type: 'snapshot-chunk';
  readonly metadata: SnapshotMetadata;
  /** Total size of the snapshot data, so the follower can bound its buffer. */
  readonly totalBytes: number;
  readonly offset: number;
  readonly data: Buffer;
  readonly done: boolean;
}

/** Chunk acknowledgement: the next byte offset the follower expects. */
export interface SnapshotChunkResponse extends MessageBase {
  readonly type: 'snapshot-chunk-response';
  readonly snapshotIndex: number;
  readonly nextOffset: number;
  readonly reject: boolean;
}

/** Leadership transfer: the target starts an election at once (thesis §3.10). */
export interface TimeoutNowRequest extends MessageBase {
  readonly type: 'timeout-now';
}

export type Message =
  | VoteRequest
  | VoteResponse
  | AppendRequest
  | AppendResponse
  | HeartbeatRequest
  | HeartbeatResponse
  | SnapshotChunkRequest
  | SnapshotChunkResponse
  | TimeoutNowRequest;

export type MessageType = Message['type'];

// ---------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------

export type RaftRole = 'follower' | 'pre-candidate' | 'candidate' | 'leader';

/** Volatile state, reported when it changes; never persisted. */
export interface SoftState {
  readonly leaderId: NodeId | null;
  readonly role: RaftRole;
  readonly term: number;
}

/**
 * A ReadIndex result (thesis §6.4): once the local state machine has applied
 * `index`, a read requested with `context` may be served linearizably.
 */
export interface ReadState {
  readonly index: number;
  readonly context: Buffer;
}

export interface Ready {
  /** Present when changed since the last Ready. */
  readonly softState?: SoftState;
  /** Present when changed since the last Ready; persist durably. */
  readonly hardState?: HardState;
  /** Persist before sending messages; may overwrite a conflicting suffix. */
  readonly entries: readonly Entry[];
  /** A snapshot received from the leader: persist, compact the log up to it, restore the state machine from it. */
  readonly snapshot?: Snapshot;
  /** Entries known committed and already durable: apply in order. */
  readonly committedEntries: readonly Entry[];
  /** Send only after the persistence above is durable. */
  readonly messages: readonly Message[];
  readonly readStates: readonly ReadState[];
}

// ---------------------------------------------------------------------------
// Configuration and injected modules
// ---------------------------------------------------------------------------

/** Planted bugs that prove the simulator's checkers bite. Never set in production. */
export type RaftCanary = 'commit-previous-term' | 'vote-without-log-check';

export interface RaftConfig {
  readonly id: NodeId;
  /** Base election timeout in ticks; the actual timeout is random in [base, 2*base) (§5.2). */
  readonly electionTicks: number;
  readonly heartbeatTicks: number;
  /** Pre-vote phase before a real election (thesis §9.6). */
  readonly preVote: boolean;
  /** Leader steps down without a quorum of recent contact; followers hold a leader lease (thesis §6.2). */
  readonly checkQuorum: boolean;
  /** Upper bound on the bytes of entries in one append message (at least one entry is always sent). */
  readonly maxMessageBytes: number;
  /** Max append messages in flight per follower in the replicate state. */
  readonly maxInflightMessages: number;
  /** Leader refuses proposals once this many bytes are appended but not committed. */
  readonly maxUncommittedBytes: number;
  /** Size of one InstallSnapshot chunk. */
  readonly maxSnapshotChunkBytes: number;
  /** A follower refuses snapshots larger than this. */
  readonly maxSnapshotBytes: number;
  /** Bound on the bytes of committed entries handed out in one Ready (at least one entry). */
  readonly maxCommittedBytesPerReady: number;
  /** Bound on pending ReadIndex requests at the leader. */
  readonly maxPendingReads: number;
  /** Testing only. */
  readonly canary?: RaftCanary;
}

/** Defaults sized for a LAN control plane: 100 ms ticks → 1 s election timeout. */
export const DEFAULT_RAFT_LIMITS = {
  electionTicks: 10,
  heartbeatTicks: 1,
  preVote: true,
  checkQuorum: true,
  maxMessageBytes: 1024 * 1024,
  maxInflightMessages: 256,
  maxUncommittedBytes: 64 * 1024 * 1024,
  maxSnapshotChunkBytes: 1024 * 1024,
  maxSnapshotBytes: 1024 * 1024 * 1024,
  maxCommittedBytesPerReady: 16 * 1024 * 1024,
  maxPendingReads: 4096,
} as const;

/** What the leader's propose()/proposeConfChange() returns: the slot the entry took. */
export interface ProposalTicket {
  readonly index: number;
  readonly term: number;
}

/** Leader's view of one peer, for status/metrics and for "learner caught up?". */
export interface PeerStatus {
  readonly id: NodeId;
  readonly matchIndex: number;
  readonly nextIndex: number;
  readonly state: 'probe' | 'replicate' | 'snapshot';
  readonly recentActive: boolean;
  readonly isLearner: boolean;
}

export interface RaftStatus {
  readonly id: NodeId;
  readonly term: number;
  readonly role: RaftRole;
  readonly leaderId: NodeId | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly firstIndex: number;
  readonly lastIndex: number;
  readonly confState: ConfState;
  /** Only on the leader. */
  readonly peers: readonly PeerStatus[];
  readonly leadershipTransferTarget: NodeId | null;
}
