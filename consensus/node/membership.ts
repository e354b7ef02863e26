/**
 * Membership changes one server at a time (Raft thesis §4.1, §4.2.1): a new
 * server joins as a learner, catches up, and only then is promoted to voter,
 * so adding it never leaves the cluster waiting on a server with an empty log.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { isPlinthError, PlinthError } from '../../common/plinth-error.js';
import type { PeerAddress } from '../transport/transport-types.js';
import type { RaftNode } from './raft-node.js';

export interface MembershipOptions {
  /** Give up (TIMEOUT) after this long. */
  readonly timeoutMs: number;
  /** How often to re-check the learner's progress or retry a refused change. */
  readonly pollMs: number;
  readonly signal?: AbortSignal;
}

/** Retryable refusals: another change is in flight, or the learner is not caught up yet. */
const RETRYABLE = ['RAFT_CONF_CHANGE_PENDING', 'RAFT_LEARNER_BEHIND'] as const;

export async function addVoter<R>(node: RaftNode<R>, nodeId: string, address: PeerAddress, options: MembershipOptions): Promise<void> {
  const deadlineMs = Date.now() + options.timeoutMs;
  await node.registerPeerAddress(nodeId, address);
  const conf = node.status().confState;
  if (conf.voters.includes(nodeId)) return;
  if (!conf.learners.includes(nodeId)) {
    await retryChange(() => node.proposeConfChange({ type: 'add-learner', nodeId }), deadlineMs, options);
  }
  await waitUntil(() => learnerCaughtUp(node, nodeId), deadlineMs, options, `learner ${nodeId} to catch up`);
  await retryChange(() => node.proposeConfChange({ type: 'promote-voter', nodeId }), deadlineMs, options);
}

export async function removeVoter<R>(node: RaftNode<R>, nodeId: string, options: MembershipOptions): Promise<void> {
  const deadlineMs = Date.now() + options.timeoutMs;
  const conf = node.status().confState;
  if (!conf.voters.includes(nodeId) && !conf.learners.includes(nodeId)) return;
  await retryChange(() => node.proposeConfChange({ type: 'remove-node', nodeId }), deadlineMs, options);
}

function learnerCaughtUp<R>(node: RaftNode<R>, nodeId: string): boolean {
  const status = node.status();
  const peer = status.peers.find((p) => p.id === nodeId);
  return peer !== undefined && peer.matchIndex >= status.commitIndex;
}

async function retryChange(change: () => Promise<void>, deadlineMs: number, options: MembershipOptions): Promise<void> {
  for (;;) {
    try {
      await change();
      return;
    } catch (err) {
      const retryable = RETRYABLE.some((code) => isPlinthError(err, code));
      if (!retryable || Date.now() + options.pollMs > deadlineMs) throw err;
    }
    await sleep(options.pollMs, undefined, options.signal === undefined ? {} : { signal: options.signal });
  }
}

async function waitUntil(condition: () => boolean, deadlineMs: number, options: MembershipOptions, what: string): Promise<void> {
  while (!condition()) {
    if (Date.now() > deadlineMs) throw new PlinthError('TIMEOUT', `timed out waiting for ${what}`);
    await sleep(options.pollMs, undefined, options.signal === undefined ? {} : { signal: options.signal });
  }
}
