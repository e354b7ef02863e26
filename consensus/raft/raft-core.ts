/**
 * RaftCore: the public face of the pure Raft state machine (the equivalent of
 * etcd-io/raft's RawNode). Inputs: step(message), tick(), propose(),
 * readIndex(), transferLeadership(), proposeConfChange(), compact().
 * Output: ready() → persist → send → apply → advance(ready). See types.ts.
 */
import type { Logger } from 'pino';
import { PlinthError } from '../../common/plinth-error.js';
import type { Prng } from '../../common/prng.js';
import { confChangeProblem, encodeConfChange, isVoter } from './conf-change.js';
import { handleVoteRequest, ignoredByLease, isVoteRequest } from './election.js';
import { Raft } from './raft.js';
import { entrySizeBytes } from './raft-log.js';
import { appendAsLeader, broadcastAppend, maybeCommit, sendAppend, startReadIndex } from './replication.js';
import type {
  ConfChange,
  Entry,
  HardState,
  Message,
  NodeId,
  ProposalTicket,
  RaftConfig,
  RaftStatus,
  RaftStorageState,
  Ready,
  Snapshot,
  SoftState,
} from './types.js';

export interface RaftCoreOptions {
  readonly config: RaftConfig;
  readonly storage: RaftStorageState;
  /** Highest index the application already applied (defaults to the snapshot index). */
  readonly appliedIndex?: number;
}

export interface RaftCoreModules {
  readonly prng: Prng;
  readonly logger: Logger;
}

/** Hard limits on configuration so a typo cannot disable a bound. */
function validateConfig(config: RaftConfig): void {
  const positive: Array<keyof RaftConfig> = [
    'electionTicks', 'heartbeatTicks', 'maxMessageBytes', 'maxInflightMessages', 'maxUncommittedBytes',
    'maxSnapshotChunkBytes', 'maxSnapshotBytes', 'maxCommittedBytesPerReady', 'maxPendingReads',
  ];
  for (const key of positive) {
    const value = config[key];
    if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
      throw new PlinthError('CONFIG_INVALID', `raft config ${key} must be a positive integer`, { key, value });
    }
  }
  if (config.heartbeatTicks >= config.electionTicks) {
    throw new PlinthError('CONFIG_INVALID', 'raft heartbeatTicks must be below electionTicks', {
      heartbeatTicks: config.heartbeatTicks,
      electionTicks: config.electionTicks,
    });
  }
  if (config.id === '') throw new PlinthError('CONFIG_INVALID', 'raft node id must not be empty');
}

export class RaftCore {
  private readonly raft: Raft;
  private previousSoftState: SoftState;
  private previousHardState: HardState;
  private readyOutstanding = false;

  constructor(options: RaftCoreOptions, modules: RaftCoreModules) {
    validateConfig(options.config);
    const { storage } = options;
    const appliedIndex = options.appliedIndex ?? storage.snapshot?.metadata.index ?? 0;
    this.raft = new Raft(options.config, storage, appliedIndex, modules.prng, modules.logger);
    this.previousSoftState = this.softState();
    this.previousHardState = this.hardState();
  }

  // ---- inputs -------------------------------------------------------------

  /** One logical clock tick; the runner calls it every tickMs. */
  tick(): void {
    this.raft.tick();
  }

  /** Feeds a message from a peer. Messages not addressed to us are dropped. */
  step(message: Message): void {
    const raft = this.raft;
    if (message.to !== raft.id) return;
    if (message.term > raft.term) {
      if (isVoteRequest(message) && ignoredByLease(raft, message)) return;
      if (!this.keepsTermOnHigherTerm(message)) {
        const fromLeader = message.type === 'append' || message.type === 'heartbeat' || message.type === 'snapshot-chunk';
        raft.becomeFollower(message.term, fromLeader ? message.from : null);
      }
    } else if (message.term < raft.term) {
      this.answerStaleMessage(message);
      return;
    }
    if (isVoteRequest(message)) {
      handleVoteRequest(raft, message);
      return;
    }
    raft.step(raft, message);
  }

  /**
   * A pre-vote request, or a granted pre-vote response, for a future term does
   * not move our term (thesis §9.6): the election has not happened yet.
   */
  private keepsTermOnHigherTerm(message: Message): boolean {
    return message.type === 'pre-vote' || (message.type === 'pre-vote-response' && !message.reject);
  }

  private answerStaleMessage(message: Message): void {
    const raft = this.raft;
    if (message.type === 'append' || message.type === 'heartbeat') {
      // Tell a deposed leader about the newer term so it steps down (needed with
      // check-quorum/pre-vote, where our term may otherwise never reach it).
      raft.send({ type: 'append-response', to: message.from, reject: false, index: 0, rejectHintIndex: 0, rejectHintTerm: 0 });
    } else if (message.type === 'pre-vote') {
      raft.send({ type: 'pre-vote-response', to: message.from, term: raft.term, reject: true });
    }
  }

  /** Appends a command; leader only. Returns the slot it took: it is applied iff the entry committed at that index has that term. */
  propose(data: Buffer): ProposalTicket {
    return this.proposeEntry('normal', data);
  }

  /** One membership change at a time (thesis §4.1); requires an entry of the current term committed first (thesis §4.1 bug fix). */
  proposeConfChange(change: ConfChange): ProposalTicket {
    const raft = this.assertLeader();
    const problem = confChangeProblem(raft.conf(), change);
    if (problem !== null || change.type === 'bootstrap') {
      throw new PlinthError('INVALID_ARGUMENT', `invalid membership change: ${problem ?? 'bootstrap is not proposable'}`, { change });
    }
    if (raft.membership.lastChangeIndex() > raft.log.committed || raft.log.term(raft.log.committed) !== raft.term) {
      throw new PlinthError('RAFT_CONF_CHANGE_PENDING', 'a membership change is still uncommitted, or this leader has not committed yet', {
        lastChangeIndex: raft.membership.lastChangeIndex(),
        commitIndex: raft.log.committed,
      });
    }
    if (change.type === 'promote-voter') {
      const match = raft.progress.get(change.nodeId)?.match ?? 0;
      if (match < raft.log.committed) {
        throw new PlinthError('RAFT_LEARNER_BEHIND', 'learner has not caught up with the commit index yet', {
          nodeId: change.nodeId,
          matchIndex: match,
          commitIndex: raft.log.committed,
        });
      }
    }
    return this.proposeEntry('conf-change', encodeConfChange(change));
  }

  private proposeEntry(type: Entry['type'], data: Buffer): ProposalTicket {
    const raft = this.assertLeader();
    if (raft.leadTransferee !== null) {
      throw new PlinthError('RAFT_TRANSFER_IN_PROGRESS', 'leadership transfer in progress; proposals are refused', {
        to: raft.leadTransferee,
      });
    }
    const sizeBytes = data.length + 24;
    if (sizeBytes > raft.config.maxMessageBytes) {
      throw new PlinthError('TOO_LARGE', 'proposal exceeds the raft message size limit', {
        sizeBytes,
        maxMessageBytes: raft.config.maxMessageBytes,
      });
    }
    if (raft.uncommittedBytes > 0 && raft.uncommittedBytes + sizeBytes > raft.config.maxUncommittedBytes) {
      throw new PlinthError('RAFT_PROPOSAL_DROPPED', 'too many uncommitted bytes at the leader', {
        uncommittedBytes: raft.uncommittedBytes,
        maxUncommittedBytes: raft.config.maxUncommittedBytes,
      });
    }
    const index = appendAsLeader(raft, [{ type, data }]);
    broadcastAppend(raft);
    return { index, term: raft.term };
  }

  /**
   * Linearizable read (thesis §6.4). The ReadState with this context appears in
   * a later Ready once leadership is confirmed; serve the read after applying
   * up to its index. Contexts must be unique. Leader only. Reads pending when
   * leadership is lost are dropped (the runner fails them on the softState change).
   */
  readIndex(context: Buffer): void {
    const raft = this.assertLeader();
    if (raft.readOnly.isFull() || raft.readsAwaitingTermCommit.length >= raft.config.maxPendingReads) {
      throw new PlinthError('RAFT_PROPOSAL_DROPPED', 'too many pending reads', { maxPendingReads: raft.config.maxPendingReads });
    }
    if (raft.log.term(raft.log.committed) !== raft.term) {
      raft.readsAwaitingTermCommit.push(context);
      return;
    }
    startReadIndex(raft, context);
  }

  /** Thesis §3.10: catch the target up, then send it TimeoutNow. Leader only. */
  transferLeadership(to: NodeId): void {
    const raft = this.assertLeader();
    if (to === raft.id) return;
    if (!isVoter(raft.conf(), to)) {
      throw new PlinthError('INVALID_ARGUMENT', 'leadership can only be transferred to a voter', { to });
    }
    if (raft.leadTransferee === to) return;
    raft.leadTransferee = to;
    raft.electionElapsed = 0;
    const progress = raft.progress.get(to);
    if (progress !== undefined && progress.match === raft.log.lastIndex()) {
      raft.send({ type: 'timeout-now', to });
    } else {
      sendAppend(raft, to, true);
    }
  }

  /**
   * Log compaction (§7): the application hands in its state-machine image as of
   * `index` (<= applied). Entries up to `index` are dropped from memory; the
   * caller persists the returned snapshot and drops the same entries from storage.
   */
  compact(index: number, data: Buffer): Snapshot {
    const raft = this.raft;
    const term = raft.log.term(index);
    if (index > raft.log.applied || index <= raft.log.snapshotIndex() || term === undefined) {
      throw new PlinthError('RAFT_SNAPSHOT_INVALID', 'snapshot index must be applied and after the current snapshot', {
        index,
        appliedIndex: raft.log.applied,
        snapshotIndex: raft.log.snapshotIndex(),
      });
    }
    const snapshot: Snapshot = { metadata: { index, term, confState: raft.membership.at(index) }, data };
    raft.log.compact(snapshot);
    raft.membership.compactTo(index);
    return snapshot;
  }

  // ---- output -------------------------------------------------------------

  hasReady(): boolean {
    if (this.readyOutstanding) return false;
    const raft = this.raft;
    return (
      raft.outbox.length > 0 ||
      raft.readStates.length > 0 ||
      raft.log.stableIndex < raft.log.lastIndex() ||
      raft.log.pendingSnapshot !== null ||
      raft.log.hasNextCommittedEntries() ||
      !sameSoftState(this.softState(), this.previousSoftState) ||
      !sameHardState(this.hardState(), this.previousHardState)
    );
  }

  ready(): Ready {
    if (this.readyOutstanding) throw new PlinthError('INTERNAL', 'raft ready() called twice without advance()');
    this.readyOutstanding = true;
    const raft = this.raft;
    const softState = this.softState();
    const hardState = this.hardState();
    const snapshot = raft.log.pendingSnapshot;
    const ready: Ready = {
      entries: raft.log.unstableEntries(),
      committedEntries: raft.log.nextCommittedEntries(raft.config.maxCommittedBytesPerReady),
      messages: raft.outbox,
      readStates: raft.readStates,
      ...(sameSoftState(softState, this.previousSoftState) ? {} : { softState }),
      ...(sameHardState(hardState, this.previousHardState) ? {} : { hardState }),
      ...(snapshot === null ? {} : { snapshot }),
    };
    raft.outbox = [];
    raft.readStates = [];
    this.previousSoftState = softState;
    this.previousHardState = hardState;
    return ready;
  }

  /** The caller persisted, sent and applied `ready`. */
  advance(ready: Ready): void {
    if (!this.readyOutstanding) throw new PlinthError('INTERNAL', 'raft advance() without an outstanding ready()');
    this.readyOutstanding = false;
    const raft = this.raft;
    if (ready.snapshot !== undefined) raft.log.snapshotPersisted(ready.snapshot);
    const lastEntry = ready.entries[ready.entries.length - 1];
    if (lastEntry !== undefined) raft.log.stableTo(lastEntry.index, lastEntry.term);
    const lastApplied = ready.committedEntries[ready.committedEntries.length - 1];
    if (lastApplied !== undefined) raft.log.appliedTo(lastApplied.index);
    if (raft.role === 'leader') {
      // The leader counts itself toward a majority only for entries it has persisted (§5.3).
      const self = raft.progress.get(raft.id);
      if (self !== undefined && self.maybeUpdate(raft.log.stableIndex) && maybeCommit(raft) && raft.role === 'leader') {
        broadcastAppend(raft);
      }
    }
  }

  // ---- inspection ---------------------------------------------------------

  status(): RaftStatus {
    const raft = this.raft;
    return {
      id: raft.id,
      term: raft.term,
      role: raft.role,
      leaderId: raft.leaderId,
      commitIndex: raft.log.committed,
      appliedIndex: raft.log.applied,
      firstIndex: raft.log.firstIndex(),
      lastIndex: raft.log.lastIndex(),
      confState: raft.conf(),
      peers: raft.role === 'leader' ? [...raft.progress.values()].map((p) => p.toStatus()) : [],
      leadershipTransferTarget: raft.leadTransferee,
    };
  }

  /** Term of a log entry still in memory (for checkers and diagnostics). */
  entryTerm(index: number): number | undefined {
    return this.raft.log.term(index);
  }

  entry(index: number): Entry | undefined {
    return this.raft.log.entryAt(index);
  }

  private assertLeader(): Raft {
    if (this.raft.role !== 'leader') {
      throw new PlinthError('NOT_LEADER', 'this node is not the raft leader', { leaderId: this.raft.leaderId });
    }
    return this.raft;
  }

  private softState(): SoftState {
    return { leaderId: this.raft.leaderId, role: this.raft.role, term: this.raft.term };
  }

  private hardState(): HardState {
    return { term: this.raft.term, vote: this.raft.vote, commit: this.raft.log.committed };
  }
}

function sameSoftState(a: SoftState, b: SoftState): boolean {
  return a.leaderId === b.leaderId && a.role === b.role && a.term === b.term;
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

