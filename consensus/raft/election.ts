/**
 * Leader election (§5.2), the election restriction (§5.4.1), pre-vote
 * (thesis §9.6) and the leader lease that check-quorum gives followers
 * (thesis §4.2.3, §6.2).
 */
import type { Raft } from './raft.js';
import { appendAsLeader, broadcastAppend } from './replication.js';
import type { Message, VoteRequest, VoteResponse } from './types.js';

export type CampaignKind = 'pre-vote' | 'vote' | 'transfer';

export function campaign(raft: Raft, kind: CampaignKind): void {
  if (!raft.isPromotable()) {
    raft.logger.debug({ id: raft.id }, 'raft: not a voter, not campaigning');
    return;
  }
  let voteTerm: number;
  if (kind === 'pre-vote') {
    raft.becomePreCandidate();
    voteTerm = raft.term + 1;
  } else {
    raft.becomeCandidate();
    voteTerm = raft.term;
  }
  const type = kind === 'pre-vote' ? 'pre-vote' : 'vote';
  // A candidate votes for itself (§5.2).
  if (poll(raft, raft.id, true) === 'won') {
    onElectionWon(raft, kind);
    return;
  }
  for (const id of raft.conf().voters) {
    if (id === raft.id) continue;
    raft.send({
      type,
      to: id,
      term: voteTerm,
      lastLogIndex: raft.log.lastIndex(),
      lastLogTerm: raft.log.lastTerm(),
      leadershipTransfer: kind === 'transfer',
    });
  }
}

function onElectionWon(raft: Raft, kind: CampaignKind): void {
  if (kind === 'pre-vote') {
    campaign(raft, 'vote');
    return;
  }
  raft.becomeLeader();
  // §8: a new leader appends a blank entry of its term; committing it tells the leader what is committed.
  appendAsLeader(raft, [{ type: 'normal', data: Buffer.alloc(0) }]);
  broadcastAppend(raft);
}


type PollResult = 'won' | 'lost' | 'pending';

export function poll(raft: Raft, from: string, granted: boolean): PollResult {
  if (!raft.votes.has(from)) raft.votes.set(from, granted);
  const voters = raft.conf().voters;
  let yes = 0;
  let no = 0;
  for (const id of voters) {
    const vote = raft.votes.get(id);
    if (vote === true) yes++;
    else if (vote === false) no++;
  }
  const quorum = raft.quorum();
  if (yes >= quorum) return 'won';
  if (no > voters.length - quorum) return 'lost';
  return 'pending';
}

/** Candidate and pre-candidate: count a vote response of the matching kind. */
export function handleVoteResponse(raft: Raft, message: VoteResponse): void {
  const expected = raft.role === 'pre-candidate' ? 'pre-vote-response' : 'vote-response';
  if (message.type !== expected) return;
  const result = poll(raft, message.from, !message.reject);
  if (result === 'won') onElectionWon(raft, raft.role === 'pre-candidate' ? 'pre-vote' : 'vote');
  else if (result === 'lost') raft.becomeFollower(raft.term, null);
}

/**
 * A follower inside the lease of a live leader ignores vote requests, so a
 * removed or partitioned server cannot depose a healthy leader (thesis §4.2.3).
 * A leadership transfer overrides the lease.
 */
export function ignoredByLease(raft: Raft, message: VoteRequest): boolean {
  if (message.leadershipTransfer || !raft.config.checkQuorum) return false;
  return raft.leaderId !== null && raft.electionElapsed < raft.config.electionTicks;
}

/** Answers RequestVote / PreVote (Figure 2 "RequestVote RPC: receiver implementation"). */
export function handleVoteRequest(raft: Raft, message: VoteRequest): void {
  const isPreVote = message.type === 'pre-vote';
  const canVote =
    raft.vote === message.from ||
    (raft.vote === null && raft.leaderId === null) ||
    (isPreVote && message.term > raft.term);
  const logOk =
    raft.config.canary === 'vote-without-log-check' ||
    raft.log.isUpToDate(message.lastLogIndex, message.lastLogTerm);
  const responseType = isPreVote ? 'pre-vote-response' : 'vote-response';
  if (canVote && logOk) {
    // A grant carries the requested term, so the candidate can count it (thesis §9.6).
    raft.send({ type: responseType, to: message.from, term: message.term, reject: false });
    if (!isPreVote) {
      raft.electionElapsed = 0;
      raft.vote = message.from;
    }
    return;
  }
  raft.send({ type: responseType, to: message.from, term: raft.term, reject: true });
}

export function isVoteRequest(message: Message): message is VoteRequest {
  return message.type === 'vote' || message.type === 'pre-vote';
}

/** Follower and candidate tick: start an election after a randomized timeout without a leader (§5.2). */
export function tickElection(raft: Raft): void {
  raft.electionElapsed++;
  if (raft.isPromotable() && raft.electionElapsed >= raft.randomizedElectionTimeout) {
    raft.electionElapsed = 0;
    campaign(raft, raft.config.preVote ? 'pre-vote' : 'vote');
  }
}
