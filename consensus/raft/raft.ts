/**
 * The mutable state of one Raft server and its role transitions (§5.1:
 * follower, candidate, leader; plus the pre-candidate of thesis §9.6).
 * Each role installs its own step and tick functions, like etcd-io/raft.
 * Message handling lives in election.ts, replication.ts, follower-step.ts
 * and leader-step.ts; this file owns the fields and the transitions.
 */
import type { Logger } from 'pino';
import { isMember, isVoter } from './conf-change.js';
import { tickElection } from './election.js';
import { stepCandidate, stepFollower } from './follower-step.js';
import { stepLeader, tickLeader } from './leader-step.js';
import { Membership } from './membership.js';
import { Progress } from './progress.js';
import { RaftLog } from './raft-log.js';
import { ReadOnlyQueue } from './read-only.js';
import { SnapshotAssembler } from './snapshot-assembler.js';
import type { Prng } from '../../common/prng.js';
import type { ConfState, Message, NodeId, RaftConfig, RaftRole, ReadState, RaftStorageState } from './types.js';

/** Distributes Omit over a message union so each variant keeps its own fields. */
export type Outgoing = Message extends infer M
  ? M extends Message
    ? Omit<M, 'from' | 'term'> & { readonly term?: number }
    : never
  : never;

export type StepFunction = (raft: Raft, message: Message) => void;
export type TickFunction = (raft: Raft) => void;

export interface RoleBehaviour {
  readonly step: StepFunction;
  readonly tick: TickFunction;
}

const ROLE_BEHAVIOURS: Record<'follower' | 'candidate' | 'leader', RoleBehaviour> = {
  follower: { step: stepFollower, tick: tickElection },
  candidate: { step: stepCandidate, tick: tickElection },
  leader: { step: stepLeader, tick: tickLeader },
};

function behaviour(role: 'follower' | 'candidate' | 'leader'): RoleBehaviour {
  return ROLE_BEHAVIOURS[role];
}

export class Raft {
  readonly id: NodeId;
  readonly config: RaftConfig;
  readonly prng: Prng;
  readonly logger: Logger;

  term: number;
  vote: NodeId | null;
  leaderId: NodeId | null = null;
  role: RaftRole = 'follower';
  readonly log: RaftLog;
  readonly membership: Membership;
  /** Leader only: one entry per member, self included. */
  readonly progress = new Map<NodeId, Progress>();
  readonly votes = new Map<NodeId, boolean>();

  electionElapsed = 0;
  heartbeatElapsed = 0;
  randomizedElectionTimeout = 0;

  outbox: Message[] = [];
  readStates: ReadState[] = [];
  readonly readOnly: ReadOnlyQueue;
  /** Reads that arrived before the leader committed an entry of its term (thesis §6.4 step 1). */
  readsAwaitingTermCommit: Buffer[] = [];
  leadTransferee: NodeId | null = null;
  uncommittedBytes = 0;
  readonly snapshotAssembler: SnapshotAssembler;

  step: StepFunction;
  tickRole: TickFunction;

  constructor(config: RaftConfig, storage: RaftStorageState, appliedIndex: number, prng: Prng, logger: Logger) {
    this.id = config.id;
    this.config = config;
    this.prng = prng;
    this.logger = logger;
    this.term = storage.hardState.term;
    this.vote = storage.hardState.vote;
    this.log = new RaftLog(storage.snapshot, storage.entries, storage.hardState.commit, appliedIndex);
    const base = storage.snapshot?.metadata;
    this.membership = new Membership(base?.index ?? 0, base?.confState);
    this.membership.appended(storage.entries);
    this.readOnly = new ReadOnlyQueue(config.maxPendingReads);
    this.snapshotAssembler = new SnapshotAssembler(config.maxSnapshotBytes);
    const follower = behaviour('follower');
    this.step = follower.step;
    this.tickRole = follower.tick;
    this.resetRandomizedElectionTimeout();
  }

  conf(): ConfState {
    return this.membership.current();
  }

  /** Only voters may campaign; a learner or a removed node never starts elections (§6). */
  isPromotable(): boolean {
    return isVoter(this.conf(), this.id) && this.log.pendingSnapshot === null;
  }

  quorum(): number {
    return Math.floor(this.conf().voters.length / 2) + 1;
  }

  send(message: Outgoing): void {
    // Vote responses carry the term they answer (a granted pre-vote is for term+1); others our term.
    this.outbox.push({ ...message, term: message.term ?? this.term, from: this.id } as Message);
  }

  resetRandomizedElectionTimeout(): void {
    // §5.2: randomized in [T, 2T) so split votes are rare.
    this.randomizedElectionTimeout = this.config.electionTicks + this.prng.nextInt(this.config.electionTicks);
  }

  private reset(term: number): void {
    if (term !== this.term) {
      this.term = term;
      this.vote = null;
    }
    this.leaderId = null;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.leadTransferee = null;
    this.votes.clear();
    this.progress.clear();
    this.readOnly.reset();
    this.readsAwaitingTermCommit = [];
    this.uncommittedBytes = 0;
  }

  becomeFollower(term: number, leaderId: NodeId | null): void {
    const follower = behaviour('follower');
    this.step = follower.step;
    this.tickRole = follower.tick;
    this.reset(term);
    this.leaderId = leaderId;
    this.role = 'follower';
  }

  becomePreCandidate(): void {
    // Pre-vote does not touch term or vote (thesis §9.6): a partitioned node cannot inflate terms.
    const candidate = behaviour('candidate');
    this.step = candidate.step;
    this.tickRole = candidate.tick;
    this.votes.clear();
    this.leaderId = null;
    this.role = 'pre-candidate';
  }

  becomeCandidate(): void {
    const candidate = behaviour('candidate');
    this.step = candidate.step;
    this.tickRole = candidate.tick;
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
  }

  becomeLeader(): void {
    const leader = behaviour('leader');
    this.step = leader.step;
    this.tickRole = leader.tick;
    this.reset(this.term);
    this.leaderId = this.id;
    this.role = 'leader';
    this.syncProgressWithConf();
    this.logger.debug({ id: this.id, term: this.term }, 'raft: became leader');
  }

  /** Leader: one Progress per member of the latest configuration (§6: new servers are replicated to at once). */
  syncProgressWithConf(): void {
    const conf = this.conf();
    for (const id of [...this.progress.keys()]) {
      if (!isMember(conf, id) && id !== this.id) this.progress.delete(id);
    }
    const members = [...conf.voters, ...conf.learners];
    if (!members.includes(this.id)) members.push(this.id);
    for (const id of members) {
      const existing = this.progress.get(id);
      const isLearner = !conf.voters.includes(id);
      if (existing !== undefined) {
        existing.isLearner = isLearner;
        continue;
      }
      const progress = new Progress(id, this.log.lastIndex() + 1, this.config.maxInflightMessages, isLearner);
      if (id === this.id) {
        progress.match = this.log.stableIndex;
        progress.recentActive = true;
      }
      this.progress.set(id, progress);
    }
  }

  tick(): void {
    this.tickRole(this);
  }

  /** Checks that a quorum of voters was heard from in the last election timeout (thesis §6.2). */
  quorumActive(): boolean {
    let active = 0;
    for (const id of this.conf().voters) {
      if (id === this.id || this.progress.get(id)?.recentActive === true) active++;
    }
    return active >= this.quorum();
  }
}
