import type { Logger } from 'pino';
import { PlinthError, toError } from '../../common/plinth-error.js';
import type { AppliedCommand, StateMachine } from '../../consensus/node/state-machine.js';
import { applyCommand, type CommandResult } from '../state/apply-command.js';
import { emptyClusterState, type ClusterState } from '../state/cluster-state.js';
import { commandEntryJson, decodeCommandEntry, type Command } from '../state/commands.js';
import { FOLLOW_ON_MAX_ACTIVE_MS, runWithRequestId } from '../logging/request-context.js';

/**
 * The cluster state machine as the Raft node runner drives it: each entry
 * carries one command as UTF-8 JSON, applied by the pure applyCommand; the
 * snapshot is the state's JSON (ARCHITECTURE "Raft carries the control plane
 * only"). A refused command is still a committed entry: every node records
 * the same refusal and the proposer gets it back as its result.
 */
export type CommandOutcome = CommandResult | PlinthError;

/** `requestId`: the control operation that proposed the entry, when it carried one. */
export type AppliedListener = (command: Command, outcome: CommandOutcome, index: number, requestId?: string) => void;

export class ClusterStateMachine implements StateMachine<CommandOutcome> {
  readonly #logger: Logger;
  readonly #listeners = new Set<AppliedListener>();
  #state: ClusterState = emptyClusterState();
  #appliedIndex = 0;

  constructor(modules: { readonly logger: Logger }) {
    this.#logger = modules.logger;
  }

  get state(): ClusterState {
    return this.#state;
  }

  /** Index of the last entry whose command was applied (0 before any). */
  get appliedIndex(): number {
    return this.#appliedIndex;
  }

  /** Called after every applied command (also refused ones); returns an unsubscribe. */
  onApplied(listener: AppliedListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  apply(applied: AppliedCommand): CommandOutcome {
    this.#appliedIndex = applied.index;
    let command: Command;
    let requestId: string | undefined;
    try {
      ({ command, requestId } = decodeCommandEntry(JSON.parse(applied.command.toString('utf8'))));
    } catch (err) {
      // Every node sees the same bytes and refuses them the same way.
      this.#logger.error({ err: toError(err), index: applied.index }, 'cluster state: undecodable command entry refused');
      return new PlinthError('INVALID_ARGUMENT', `undecodable command at index ${applied.index}: ${toError(err).message}`);
    }
    const outcome = applyCommand(this.#state, command);
    const result = outcome instanceof PlinthError ? outcome : outcome.result;
    if (!(outcome instanceof PlinthError)) this.#state = outcome.state;
    // The apply and what listeners start because of it run as the proposing
    // operation (or explicitly as none: the Raft loop may carry a stale scope).
    runWithRequestId(requestId ?? null, () => this.#announce(command, result, applied.index, requestId), FOLLOW_ON_MAX_ACTIVE_MS);
    return result;
  }

  /**
   * Entries proposed by a control operation (they carry its request id) are
   * logged at info on every node, so one id finds the operation in every
   * node's log; the rest (heartbeat-driven node.up/down, capacity, replica
   * states) stay at debug.
   */
  #announce(command: Command, result: CommandOutcome, index: number, requestId: string | undefined): void {
    const refused = result instanceof PlinthError ? result.code : undefined;
    if (requestId === undefined) {
      this.#logger.debug({ index, command: command.type, refused }, 'cluster state: entry applied');
    } else {
      this.#logger.info({ index, command: command.type, refused, requestId }, `applied ${command.type} requestId=${requestId}`);
    }
    for (const listener of this.#listeners) {
      try {
        listener(command, result, index, requestId);
      } catch (err) {
        this.#logger.error({ err: toError(err), command: command.type }, 'cluster state: applied-listener failed');
      }
    }
  }

  snapshot(): Buffer {
    return Buffer.from(JSON.stringify({ appliedIndex: this.#appliedIndex, state: this.#state }), 'utf8');
  }

  restore(image: Buffer): void {
    const decoded = JSON.parse(image.toString('utf8')) as unknown;
    if (!isSnapshotImage(decoded)) throw new PlinthError('RAFT_SNAPSHOT_INVALID', 'cluster state snapshot is not {appliedIndex, state}');
    // A restore replaces everything applied so far: worth a line in the log.
    this.#logger.info({ from: this.#appliedIndex, to: decoded.appliedIndex, volumes: Object.keys(decoded.state.volumes).length }, 'cluster state: restored from a snapshot');
    this.#state = decoded.state;
    this.#appliedIndex = decoded.appliedIndex;
  }
}

/** A Raft entry's bytes; `requestId` rides in the entry's envelope (commands.ts CommandEntry). */
export function encodeCommand(command: Command, requestId?: string): Buffer {
  return Buffer.from(JSON.stringify(commandEntryJson(requestId === undefined ? { command } : { command, requestId })), 'utf8');
}

function isSnapshotImage(value: unknown): value is { appliedIndex: number; state: ClusterState } {
  if (typeof value !== 'object' || value === null) return false;
  const record = value as Record<string, unknown>;
  const state = record['state'];
  if (typeof record['appliedIndex'] !== 'number' || typeof state !== 'object' || state === null) return false;
  const fields = state as Record<string, unknown>;
  return (fields['clusterId'] === null || typeof fields['clusterId'] === 'string') && typeof fields['nodes'] === 'object' && typeof fields['volumes'] === 'object';
}
