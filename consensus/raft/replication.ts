/**
 * Leader-side log replication (§5.3): appending proposals, sending appends,
 * snapshots (§7) and heartbeats within each follower's flow-control window,
 * and the commit rule (§5.3, §5.4.2).
 */
import { isVoter } from './conf-change.js';
import type { Progress } from './progress.js';
import type { Raft } from './raft.js';
import { entrySizeBytes } from './raft-log.js';
import type { Entry, EntryType, NodeId } from './types.js';

export interface NewEntry {
  readonly type: EntryType;
  readonly data: Buffer;
}

/** Appends entries in the leader's term; a conf change takes effect now (thesis §4.1). Returns the last index. */
export function appendAsLeader(raft: Raft, newEntries: readonly NewEntry[]): number {
  let index = raft.log.lastIndex();
  const entries: Entry[] = newEntries.map((e) => ({ index: ++index, term: raft.term, type: e.type, data: e.data }));
  raft.log.append(entries);
  for (const entry of entries) raft.uncommittedBytes += entrySizeBytes(entry);
  if (raft.membership.appended(entries)) raft.syncProgressWithConf();
  return index;
}

export function broadcastAppend(raft: Raft): void {
  for (const id of raft.progress.keys()) {
    if (id !== raft.id) sendAppend(raft, id, true);
  }
}

/**
 * Sends the next batch of entries to `to` if its window allows. Falls back to
 * a snapshot when the entries it needs were compacted away (§7).
 * Returns whether a message was sent.
 */
export function sendAppend(raft: Raft, to: NodeId, sendIfEmpty: boolean): boolean {
  const progress = raft.progress.get(to);
  if (progress === undefined || progress.isPaused()) return false;
  const prevLogIndex = progress.next - 1;
  const prevLogTerm = raft.log.term(prevLogIndex);
  if (prevLogTerm === undefined || prevLogIndex < raft.log.snapshotIndex()) {
    return startSnapshot(raft, progress);
  }
  const entries =
    progress.next <= raft.log.lastIndex()
      ? raft.log.slice(progress.next, raft.log.lastIndex(), raft.config.maxMessageBytes)
      : [];
  if (entries.length === 0 && !sendIfEmpty) return false;
  raft.send({ type: 'append', to, prevLogIndex, prevLogTerm, entries, commit: raft.log.committed });
  const last = entries[entries.length - 1];
  progress.sentEntries(last === undefined ? null : last.index);
  return true;
}

function startSnapshot(raft: Raft, progress: Progress): boolean {
  const snapshot = raft.log.snapshot;
  if (snapshot === null) {
    raft.logger.warn({ to: progress.id }, 'raft: follower needs compacted entries but there is no snapshot');
    return false;
  }
  progress.becomeSnapshot(snapshot.metadata.index);
  sendSnapshotChunk(raft, progress);
  return true;
}

/** InstallSnapshot in chunks (Figure 13): one chunk per acknowledgement, bounded by maxSnapshotChunkBytes. */
export function sendSnapshotChunk(raft: Raft, progress: Progress): void {
  const snapshot = raft.log.snapshot;
  if (snapshot === null) return;
  if (snapshot.metadata.index !== progress.pendingSnapshotIndex) {
    // The leader compacted again meanwhile: start over with the newer snapshot.
    progress.becomeSnapshot(snapshot.metadata.index);
  }
  const offset = Math.min(progress.snapshotOffset, snapshot.data.length);
  const data = snapshot.data.subarray(offset, offset + raft.config.maxSnapshotChunkBytes);
  raft.send({
    type: 'snapshot-chunk',
    to: progress.id,
    metadata: snapshot.metadata,
    totalBytes: snapshot.data.length,
    offset,
    data,
    done: offset + data.length >= snapshot.data.length,
  });
}

/** Heartbeats carry min(match, commit) so a follower never commits entries it may not have (etcd). */
export function broadcastHeartbeat(raft: Raft, context: Buffer | null): void {
  for (const [id, progress] of raft.progress) {
    if (id === raft.id) continue;
    raft.send({ type: 'heartbeat', to: id, commit: Math.min(progress.match, raft.log.committed), context });
  }
}

/**
 * The commit rule: an index is committed once a majority of voters store it
 * (§5.3) AND it is from the leader's current term (§5.4.2, Figure 8): older
 * entries are committed only indirectly, by a later entry of the current term.
 */
export function maybeCommit(raft: Raft): boolean {
  const matches = raft.conf().voters.map((id) => raft.progress.get(id)?.match ?? 0);
  if (matches.length === 0) return false;
  matches.sort((a, b) => b - a);
  const quorumIndex = matches[raft.quorum() - 1] ?? 0;
  if (quorumIndex <= raft.log.committed) return false;
  const currentTermOnly = raft.config.canary !== 'commit-previous-term';
  if (currentTermOnly && raft.log.term(quorumIndex) !== raft.term) return false;
  const previous = raft.log.committed;
  raft.log.commitTo(quorumIndex);
  onLeaderCommitted(raft, previous);
  return true;
}

function onLeaderCommitted(raft: Raft, previousCommit: number): void {
  for (let index = previousCommit + 1; index <= raft.log.committed; index++) {
    const entry = raft.log.entryAt(index);
    if (entry !== undefined) raft.uncommittedBytes = Math.max(0, raft.uncommittedBytes - entrySizeBytes(entry));
  }
  if (raft.log.term(raft.log.committed) === raft.term && raft.readsAwaitingTermCommit.length > 0) {
    const waiting = raft.readsAwaitingTermCommit;
    raft.readsAwaitingTermCommit = [];
    for (const context of waiting) startReadIndex(raft, context);
  }
  // Thesis §4.2.2: a leader removed from the configuration steps down once the removal commits.
  if (!isVoter(raft.conf(), raft.id) && raft.membership.lastChangeIndex() <= raft.log.committed) {
    raft.logger.info({ id: raft.id, term: raft.term }, 'raft: leader no longer a voter, stepping down');
    raft.becomeFollower(raft.term, null);
  }
}

/** Thesis §6.4 steps 2-3: record the commit index, then confirm leadership with a heartbeat round. */
export function startReadIndex(raft: Raft, context: Buffer): void {
  const voters = raft.conf().voters;
  if (voters.length === 1 && voters[0] === raft.id) {
    raft.readStates.push({ index: raft.log.committed, context });
    return;
  }
  if (raft.readOnly.add(raft.log.committed, context, raft.id)) broadcastHeartbeat(raft, context);
}
