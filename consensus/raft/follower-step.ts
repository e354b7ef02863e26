/**
 * Step functions of followers and (pre-)candidates, and the receiver side of
 * AppendEntries (§5.3), heartbeats and InstallSnapshot (§7).
 */
import { campaign, handleVoteResponse } from './election.js';
import type { Raft } from './raft.js';
import type { AppendRequest, Entry, HeartbeatRequest, Message, Snapshot, SnapshotChunkRequest } from './types.js';

export function stepFollower(raft: Raft, message: Message): void {
  switch (message.type) {
    case 'append':
      acceptLeader(raft, message.from);
      handleAppend(raft, message);
      return;
    case 'heartbeat':
      acceptLeader(raft, message.from);
      handleHeartbeat(raft, message);
      return;
    case 'snapshot-chunk':
      acceptLeader(raft, message.from);
      handleSnapshotChunk(raft, message);
      return;
    case 'timeout-now':
      // Thesis §3.10: the transfer target starts an election at once, skipping pre-vote.
      raft.logger.info({ id: raft.id, from: message.from, term: raft.term }, 'raft: timeout-now, campaigning');
      campaign(raft, 'transfer');
      return;
    default:
      return;
  }
}

export function stepCandidate(raft: Raft, message: Message): void {
  switch (message.type) {
    case 'append':
    case 'heartbeat':
    case 'snapshot-chunk':
      // §5.2: a candidate that hears from a leader of its term (or newer) returns to follower.
      raft.becomeFollower(message.term, message.from);
      stepFollower(raft, message);
      return;
    case 'vote-response':
    case 'pre-vote-response':
      handleVoteResponse(raft, message);
      return;
    default:
      return;
  }
}

function acceptLeader(raft: Raft, leaderId: string): void {
  raft.electionElapsed = 0;
  raft.leaderId = leaderId;
}

/** Figure 2 "AppendEntries RPC: receiver implementation" with the §5.3 conflict hint. */
export function handleAppend(raft: Raft, message: AppendRequest): void {
  const log = raft.log;
  if (message.prevLogIndex < log.committed) {
    // Everything up to our commit index already matches the leader's log.
    raft.send({ type: 'append-response', to: message.from, reject: false, index: log.committed, rejectHintIndex: 0, rejectHintTerm: 0 });
    return;
  }
  if (!log.matchTerm(message.prevLogIndex, message.prevLogTerm)) {
    const hint = log.findConflictByTerm(Math.min(message.prevLogIndex, log.lastIndex()), message.prevLogTerm);
    raft.send({
      type: 'append-response',
      to: message.from,
      reject: true,
      index: message.prevLogIndex,
      rejectHintIndex: hint.index,
      rejectHintTerm: hint.term,
    });
    return;
  }
  const lastNewIndex = message.prevLogIndex + message.entries.length;
  const conflict = log.findConflict(message.entries);
  if (conflict !== 0) {
    appendAsFollower(raft, message.entries.slice(conflict - message.prevLogIndex - 1));
  }
  // Figure 2 rule 5: commit up to min(leaderCommit, index of last new entry).
  log.commitTo(Math.min(message.commit, lastNewIndex));
  raft.send({ type: 'append-response', to: message.from, reject: false, index: lastNewIndex, rejectHintIndex: 0, rejectHintTerm: 0 });
}

function appendAsFollower(raft: Raft, entries: readonly Entry[]): void {
  const truncatedFrom = raft.log.append(entries);
  if (truncatedFrom !== 0) raft.membership.truncateFrom(truncatedFrom);
  raft.membership.appended(entries);
}

function handleHeartbeat(raft: Raft, message: HeartbeatRequest): void {
  raft.log.commitTo(Math.min(message.commit, raft.log.lastIndex()));
  raft.send({ type: 'heartbeat-response', to: message.from, context: message.context });
}

function handleSnapshotChunk(raft: Raft, message: SnapshotChunkRequest): void {
  const respondAppended = (): void =>
    raft.send({ type: 'append-response', to: message.from, reject: false, index: raft.log.lastIndex(), rejectHintIndex: 0, rejectHintTerm: 0 });
  if (message.metadata.index <= raft.log.committed) {
    raft.snapshotAssembler.reset();
    raft.send({ type: 'append-response', to: message.from, reject: false, index: raft.log.committed, rejectHintIndex: 0, rejectHintTerm: 0 });
    return;
  }
  const outcome = raft.snapshotAssembler.accept(message);
  const chunkResponse = (nextOffset: number, reject: boolean): void =>
    raft.send({ type: 'snapshot-chunk-response', to: message.from, snapshotIndex: message.metadata.index, nextOffset, reject });
  switch (outcome.kind) {
    case 'too-large':
      raft.logger.warn({ id: raft.id, totalBytes: message.totalBytes }, 'raft: refusing oversized snapshot');
      chunkResponse(0, true);
      return;
    case 'out-of-order':
      chunkResponse(outcome.nextOffset, true);
      return;
    case 'progress':
      chunkResponse(outcome.nextOffset, false);
      return;
    case 'complete':
      restoreSnapshot(raft, outcome.snapshot);
      respondAppended();
      return;
  }
}

/** §7: keep the log if it already has the snapshot's last entry; otherwise discard it and restore. */
function restoreSnapshot(raft: Raft, snapshot: Snapshot): void {
  const { index, term, confState } = snapshot.metadata;
  if (raft.log.matchTerm(index, term)) {
    raft.log.commitTo(index);
    return;
  }
  raft.logger.info({ id: raft.id, index, term }, 'raft: restoring snapshot from leader');
  raft.log.restore(snapshot);
  raft.membership.reset(index, confState);
}
