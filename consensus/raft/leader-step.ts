/**
 * The leader's step and tick functions: append responses drive flow control
 * and the commit index (§5.3), heartbeat responses confirm ReadIndex rounds
 * (thesis §6.4) and liveness for check-quorum (thesis §6.2), and leadership
 * transfer finishes with TimeoutNow (thesis §3.10).
 */
import type { Raft } from './raft.js';
import { broadcastAppend, broadcastHeartbeat, maybeCommit, sendAppend, sendSnapshotChunk } from './replication.js';
import type { AppendResponse, HeartbeatResponse, Message, SnapshotChunkResponse } from './types.js';

export function stepLeader(raft: Raft, message: Message): void {
  switch (message.type) {
    case 'append-response':
      handleAppendResponse(raft, message);
      return;
    case 'heartbeat-response':
      handleHeartbeatResponse(raft, message);
      return;
    case 'snapshot-chunk-response':
      handleSnapshotChunkResponse(raft, message);
      return;
    default:
      return;
  }
}

export function tickLeader(raft: Raft): void {
  raft.heartbeatElapsed++;
  raft.electionElapsed++;
  if (raft.electionElapsed >= raft.config.electionTicks) {
    raft.electionElapsed = 0;
    if (raft.config.checkQuorum) {
      if (!raft.quorumActive()) {
        // Thesis §6.2: without recent contact from a quorum, stop acting as leader.
        raft.logger.info({ id: raft.id, term: raft.term }, 'raft: lost quorum contact, stepping down');
        raft.becomeFollower(raft.term, null);
        return;
      }
      for (const [id, progress] of raft.progress) progress.recentActive = id === raft.id;
    }
    if (raft.leadTransferee !== null) {
      // A transfer that did not finish within an election timeout is abandoned (thesis §3.10).
      raft.logger.info({ id: raft.id, to: raft.leadTransferee }, 'raft: leadership transfer timed out');
      raft.leadTransferee = null;
    }
  }
  if (raft.heartbeatElapsed >= raft.config.heartbeatTicks) {
    raft.heartbeatElapsed = 0;
    broadcastHeartbeat(raft, raft.readOnly.lastContext());
  }
}

function handleAppendResponse(raft: Raft, message: AppendResponse): void {
  const progress = raft.progress.get(message.from);
  if (progress === undefined) return;
  progress.recentActive = true;
  if (message.reject) {
    // §5.3 fast back-off: jump to the last index that can match the follower's hint.
    const matchHint =
      message.rejectHintTerm > 0
        ? raft.log.findConflictByTerm(message.rejectHintIndex, message.rejectHintTerm).index
        : message.rejectHintIndex;
    if (progress.maybeDecreaseTo(message.index, matchHint)) {
      if (progress.state === 'replicate') progress.becomeProbe();
      sendAppend(raft, message.from, true);
    }
    return;
  }
  const wasPaused = progress.isPaused();
  if (!progress.maybeUpdate(message.index)) return;
  if (progress.state === 'probe') {
    progress.becomeReplicate();
  } else if (progress.state === 'snapshot' && progress.match >= progress.pendingSnapshotIndex) {
    progress.becomeProbe();
    progress.becomeReplicate();
  } else if (progress.state === 'replicate') {
    progress.inflights.freeUpTo(message.index);
  }
  if (maybeCommit(raft)) {
    if (raft.role !== 'leader') return;
    broadcastAppend(raft);
  } else if (wasPaused) {
    sendAppend(raft, message.from, true);
  }
  // Fill the window (bounded by maxInflightMessages).
  while (sendAppend(raft, message.from, false)) {
    /* keep sending */
  }
  if (message.from === raft.leadTransferee && progress.match === raft.log.lastIndex()) {
    raft.logger.info({ id: raft.id, to: message.from }, 'raft: transfer target caught up, sending timeout-now');
    raft.send({ type: 'timeout-now', to: message.from });
  }
}

function handleHeartbeatResponse(raft: Raft, message: HeartbeatResponse): void {
  const progress = raft.progress.get(message.from);
  if (progress === undefined) return;
  progress.recentActive = true;
  progress.probeSent = false;
  if (progress.state === 'replicate' && progress.inflights.full()) progress.inflights.freeFirst();
  if (progress.state === 'snapshot') {
    // The chunk or its ack may have been lost: resend from the last acknowledged offset.
    sendSnapshotChunk(raft, progress);
  } else if (progress.match < raft.log.lastIndex()) {
    sendAppend(raft, message.from, true);
  }
  if (message.context === null) return;
  const acks = raft.readOnly.ack(message.from, message.context);
  if (acks === null) return;
  let voterAcks = 0;
  for (const id of raft.conf().voters) if (acks.has(id)) voterAcks++;
  if (voterAcks >= raft.quorum()) {
    for (const state of raft.readOnly.releaseThrough(message.context)) raft.readStates.push(state);
  }
}

function handleSnapshotChunkResponse(raft: Raft, message: SnapshotChunkResponse): void {
  const progress = raft.progress.get(message.from);
  if (progress === undefined) return;
  progress.recentActive = true;
  if (progress.state !== 'snapshot' || message.snapshotIndex !== progress.pendingSnapshotIndex) return;
  if (message.reject && message.nextOffset === 0 && progress.snapshotOffset === 0) {
    // The follower refused the snapshot outright (too large): probe again later.
    raft.logger.warn({ id: raft.id, to: message.from }, 'raft: follower refused snapshot');
    progress.becomeProbe();
    progress.probeSent = true;
    return;
  }
  // Send the next chunk only when the follower moved forward or asked for a different offset.
  if (message.nextOffset > progress.snapshotOffset || (message.reject && message.nextOffset !== progress.snapshotOffset)) {
    progress.snapshotOffset = message.nextOffset;
    sendSnapshotChunk(raft, progress);
  }
}
