import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { isPlinthError, PlinthError } from '../../common/plinth-error.js';
import { removeVoter } from '../../consensus/node/membership.js';
import type { RaftNode } from '../../consensus/node/raft-node.js';
import type { HostPort } from '../config/config-types.js';
import type { CommandProposer } from '../control/command-proposer.js';
import type { CommandResult } from '../state/apply-command.js';
import type { ClusterState } from '../state/cluster-state.js';
import { decodeCommand, type Command } from '../state/commands.js';
import { encodeCommand, type ClusterStateMachine, type CommandOutcome } from './cluster-state-machine.js';
import { callPeer, type RpcRequest } from './peer-rpc.js';
import { currentRequestId, outsideRequestScope, runWithRequestId } from '../logging/request-context.js';

export interface RaftCommandLogOptions {
  readonly nodeId: string;
  /** Bound on one forwarded call and on waiting for a leader to be known. */
  readonly forwardTimeoutMs: number;
  /** Forwarded calls in flight at once; beyond it BUSY (a limit on everything). */
  readonly maxForwards: number;
}

export interface RaftCommandLogModules {
  readonly raft: RaftNode<CommandOutcome>;
  readonly stateMachine: ClusterStateMachine;
  readonly secret: Buffer;
  /** How forwarded proposals dial the leader: mutual TLS in a TLS cluster (daemon/tls/peer-sockets.ts); plain TCP by default. */
  readonly dial?: (host: string, port: number) => import('node:net').Socket;
  readonly logger: Logger;
}

const POLL_MS = 10;

/**
 * The Raft-backed CommandProposer: commands are JSON in Raft entries, applied
 * by the ClusterStateMachine on every node. On the leader, propose/read go to
 * the local RaftNode; on a follower they are forwarded to the leader over the
 * peer port (peer-rpc.ts). Errors: NOT_LEADER (no leader known within the
 * timeout, or leadership moved), TIMEOUT, or the state machine's refusal.
 */
export class RaftCommandLog implements CommandProposer {
  readonly #options: RaftCommandLogOptions;
  readonly #modules: RaftCommandLogModules;
  #forwards = 0;
  readonly #proposalListeners = new Set<(durationMs: number) => void>();
  #supportNode: ((sinceMs: number, maxLogBytes: number) => Promise<unknown>) | null = null;
  #memberOps: ((request: RpcRequest) => Promise<unknown>) | null = null;

  constructor(options: RaftCommandLogOptions, modules: RaftCommandLogModules) {
    this.#options = options;
    this.#modules = modules;
  }

  get state(): ClusterState {
    return this.#modules.stateMachine.state;
  }

  get leaderId(): string | null {
    return this.#modules.raft.leaderId;
  }

  get isLeader(): boolean {
    return this.#modules.raft.role === 'leader';
  }

  async propose(command: Command): Promise<CommandResult> {
    // The control operation this runs for (REST request id): it travels to the leader and into the entry.
    const requestId = currentRequestId();
    if (this.isLeader) return this.#proposeLocally(command, requestId);
    if (requestId !== undefined) this.#modules.logger.info({ command: command.type, leaderId: this.leaderId }, 'forwarding a proposal to the leader');
    const answer = await this.#forward(requestId === undefined ? { op: 'propose', command } : { op: 'propose', command, requestId });
    // Read your writes: a caller that proposed through this node (an API
    // create, then an NBD connect here) must find the change in `state`.
    if (!isForwardedProposal(answer)) throw new PlinthError('INTERNAL', 'the leader answered a forwarded proposal without its applied index');
    await this.#waitApplied(answer.appliedIndex);
    return answer.result;
  }

  /**
   * Linearizable read barrier (invariant 6): once it resolves, `state` holds
   * every write committed before the call began.
   */
  async barrier(): Promise<void> {
    if (this.isLeader) {
      await this.#modules.raft.read();
      return;
    }
    const index = await this.#forward({ op: 'read' });
    if (typeof index !== 'number') throw new PlinthError('INTERNAL', 'leader answered a read with no index');
    await this.#waitApplied(index);
  }

  /** Raft membership: remove `nodeId` as a voter (on the leader, or forwarded to it). */
  async removeVoter(nodeId: string): Promise<void> {
    if (this.isLeader) {
      await removeVoter(this.#modules.raft, nodeId, { timeoutMs: this.#options.forwardTimeoutMs, pollMs: 20 });
      return;
    }
    await this.#forward({ op: 'remove-voter', nodeId });
  }

  /** Serve a request forwarded by a follower; refuses unless this node leads. */
  async handleForwarded(request: RpcRequest): Promise<unknown> {
    // Any node answers for itself (support bundle), leader or not.
    if (request.op === 'support-node') return this.#serveSupportNode(request.sinceMs, request.maxLogBytes);
    // Issue 8: the owner of an attached volume takes its snapshots, leader or not.
    if (request.op === 'snapshot-create' || request.op === 'volume-pause' || request.op === 'volume-resume') return this.#serveMemberOp(request);
    if (!this.isLeader) {
      throw new PlinthError('NOT_LEADER', `node ${this.#options.nodeId} is not the leader`, { leaderId: this.leaderId, retry: true });
    }
    switch (request.op) {
      case 'propose':
        return runWithRequestId(request.requestId ?? null, async (scope) => {
          try {
            const command = decodeCommand(request.command);
            if (request.requestId !== undefined) this.#modules.logger.info({ command: command.type }, 'proposing a command forwarded by a follower');
            const result = await this.#proposeLocally(command, request.requestId);
            // The entry is applied here, so the applied index covers it.
            const answer: ForwardedProposal = { result, appliedIndex: this.#modules.raft.appliedIndex };
            return answer;
          } finally {
            scope.end();
          }
        }, 2 * this.#options.forwardTimeoutMs);
      case 'read':
        return this.#modules.raft.read();
      case 'remove-voter':
        await this.removeVoter(request.nodeId);
        return null;
    }
  }

  /**
   * Observe each command this node proposed as the leader, from propose to
   * applied here (metrics: plinth_raft_proposal_duration_seconds); returns an
   * unsubscribe. Refusals by the state machine count: they were committed too.
   */
  onProposalApplied(listener: (durationMs: number) => void): () => void {
    this.#proposalListeners.add(listener);
    return () => this.#proposalListeners.delete(listener);
  }

  /**
   * Serve `support-node` peer calls with `provider` (daemon/support/): this
   * node's part of a support bundle. Until set, such calls are refused.
   */
  serveSupportNode(provider: (sinceMs: number, maxLogBytes: number) => Promise<unknown>): void {
    this.#supportNode = provider;
  }

  /**
   * Ask one member directly (not the leader), over the same peer connection
   * as forwarded proposals: a support bundle gathers every node's part so.
   */
  async callMember(nodeId: string, request: RpcRequest, options: { readonly timeoutMs: number; readonly maxAnswerBytes?: number }): Promise<unknown> {
    const address = this.#modules.raft.addressOf(nodeId);
    if (address === undefined) throw new PlinthError('NODE_NOT_FOUND', `no peer address known for node ${nodeId}`, { nodeId });
    return callPeer(address, request, {
      secret: this.#modules.secret,
      timeoutMs: options.timeoutMs,
      ...(options.maxAnswerBytes === undefined ? {} : { maxAnswerBytes: options.maxAnswerBytes }),
      ...(this.#modules.dial === undefined ? {} : { dial: this.#modules.dial }),
    });
  }

  /** Issue 8: serve member calls addressed to this node itself (`snapshot-create`) with `handler`; refused until set. */
  serveMemberOps(handler: (request: RpcRequest) => Promise<unknown>): void {
    this.#memberOps = handler;
  }

  #serveMemberOp(request: RpcRequest): Promise<unknown> {
    if (this.#memberOps === null) throw new PlinthError('NOT_SUPPORTED', `node ${this.#options.nodeId} does not serve ${request.op} (yet)`);
    return this.#memberOps(request);
  }

  #serveSupportNode(sinceMs: number, maxLogBytes: number): Promise<unknown> {
    if (this.#supportNode === null) throw new PlinthError('NOT_SUPPORTED', `node ${this.#options.nodeId} does not serve support data (yet)`);
    return this.#supportNode(sinceMs, maxLogBytes);
  }

  async #proposeLocally(command: Command, requestId: string | undefined): Promise<CommandResult> {
    const startMs = performance.now();
    // The Raft loop must not inherit this operation's log scope (request-context.ts).
    const outcome = await outsideRequestScope(() => this.#modules.raft.propose(encodeCommand(command, requestId)));
    const durationMs = performance.now() - startMs;
    for (const listener of this.#proposalListeners) listener(durationMs);
    if (outcome instanceof PlinthError) throw outcome;
    return outcome;
  }

  /**
   * Send to the leader; retries only what cannot have been applied: no
   * leader known yet, or a refusal made before anything was proposed.
   */
  async #forward(request: RpcRequest): Promise<unknown> {
    if (this.#forwards >= this.#options.maxForwards) {
      throw new PlinthError('BUSY', `too many requests forwarded to the leader (${this.#options.maxForwards}); retry later`);
    }
    this.#forwards += 1;
    const deadlineMs = Date.now() + this.#options.forwardTimeoutMs;
    try {
      for (;;) {
        if (this.isLeader) return await this.handleForwarded(request);
        const leader = this.#leaderAddress();
        if (leader !== undefined) {
          try {
            return await callPeer(leader, request, { secret: this.#modules.secret, timeoutMs: Math.max(100, deadlineMs - Date.now()), ...(this.#modules.dial === undefined ? {} : { dial: this.#modules.dial }) });
          } catch (err) {
            const retry = isPlinthError(err, 'NOT_LEADER') && err.details['retry'] === true;
            const unreachable = isPlinthError(err, 'IO_ERROR') && request.op === 'read';
            if (!(retry || unreachable) || Date.now() >= deadlineMs) throw err;
          }
        }
        if (Date.now() >= deadlineMs) {
          throw new PlinthError('NOT_LEADER', `no raft leader is reachable from node ${this.#options.nodeId}; the cluster may have lost its quorum`, {
            leaderId: this.leaderId,
          });
        }
        await sleep(POLL_MS * 5);
      }
    } finally {
      this.#forwards -= 1;
    }
  }

  /** The leader's peer address; undefined while no other node is known to lead. */
  #leaderAddress(): HostPort | undefined {
    const leaderId = this.#modules.raft.leaderId;
    return leaderId === null || leaderId === this.#options.nodeId ? undefined : this.#modules.raft.addressOf(leaderId);
  }

  async #waitApplied(index: number): Promise<void> {
    const deadlineMs = Date.now() + this.#options.forwardTimeoutMs;
    while (this.#modules.raft.appliedIndex < index) {
      if (Date.now() >= deadlineMs) {
        throw new PlinthError('TIMEOUT', `node ${this.#options.nodeId} did not apply index ${index} within ${this.#options.forwardTimeoutMs} ms`, {
          index,
          appliedIndex: this.#modules.raft.appliedIndex,
        });
      }
      await sleep(POLL_MS);
    }
  }
}

/** What the leader answers a forwarded proposal: the result and an applied index covering its entry. */
interface ForwardedProposal {
  readonly result: CommandResult;
  readonly appliedIndex: number;
}

function isForwardedProposal(answer: unknown): answer is ForwardedProposal {
  return typeof answer === 'object' && answer !== null && 'appliedIndex' in answer && typeof answer.appliedIndex === 'number' && 'result' in answer;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
