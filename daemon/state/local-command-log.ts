import type { Logger } from 'pino';
import { PlinthError } from '../../common/plinth-error.js';
import { applyCommand, type CommandResult } from './apply-command.js';
import { emptyClusterState, type ClusterState } from './cluster-state.js';
import { decodeCommand, type Command } from './commands.js';

/**
 * What the log needs of its storage: a level sublevel with JSON values fits.
 * `sync: true` makes LevelDB fsync its write-ahead log before resolving.
 */
export interface CommandLogStorage {
  get(key: string): Promise<unknown>;
  batch(
    operations: Array<{ type: 'put'; key: string; value: unknown } | { type: 'del'; key: string }>,
    options: { sync: boolean },
  ): Promise<void>;
  values(options: { gt: string; lt: string }): AsyncIterable<unknown>;
}

export interface LocalCommandLogOptions {
  /** Proposals waiting their turn; more are refused with BUSY (a limit on everything). */
  readonly maxPendingCommands?: number;
  /** Applied entries kept for inspection and replay; older ones are deleted. */
  readonly retainedEntries?: number;
}

export interface LocalCommandLogModules {
  readonly storage: CommandLogStorage;
  readonly logger: Logger;
}

interface AppliedRecord {
  readonly appliedIndex: number;
  readonly state: ClusterState;
}

const APPLIED_KEY = 'applied';
const ENTRY_PREFIX = 'entry:';
/** ':' + 1 sorts right after every `entry:` key. */
const ENTRY_RANGE_END = 'entry;';

export function entryKey(index: number): string {
  return `${ENTRY_PREFIX}${String(index).padStart(16, '0')}`;
}

/**
 * The single-node stand-in for the Raft log: commands are applied one at a
 * time, in order, and the resulting {appliedIndex, state} is durable (synced)
 * before propose() resolves, together with the entry itself. On open it loads
 * the last applied state and replays any entry written after it, the same
 * persist → apply sequence Raft's Ready loop follows.
 *
 * The whole state is rewritten per command: fine for the bounded volume and
 * node counts of volume-rules.ts; the Raft issue brings snapshots.
 */
export class LocalCommandLog {
  readonly #storage: CommandLogStorage;
  readonly #logger: Logger;
  readonly #maxPending: number;
  readonly #retainedEntries: number;
  #state: ClusterState;
  #appliedIndex: number;
  #pending = 0;
  #tail: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(options: LocalCommandLogOptions, modules: LocalCommandLogModules, applied: AppliedRecord) {
    this.#storage = modules.storage;
    this.#logger = modules.logger;
    this.#maxPending = options.maxPendingCommands ?? 1024;
    this.#retainedEntries = options.retainedEntries ?? 1000;
    this.#state = applied.state;
    this.#appliedIndex = applied.appliedIndex;
  }

  static async open(options: LocalCommandLogOptions, modules: LocalCommandLogModules): Promise<LocalCommandLog> {
    const stored = await modules.storage.get(APPLIED_KEY);
    const applied = stored === undefined ? { appliedIndex: 0, state: emptyClusterState() } : decodeApplied(stored);
    const log = new LocalCommandLog(options, modules, applied);
    await log.#replay();
    return log;
  }

  get state(): ClusterState {
    return this.#state;
  }

  get appliedIndex(): number {
    return this.#appliedIndex;
  }

  /** Apply `command` after every earlier proposal; resolves once durable, throws the refusal otherwise. */
  propose(command: Command): Promise<CommandResult> {
    if (this.#closed) return Promise.reject(new PlinthError('SHUTTING_DOWN', 'the command log is closed'));
    if (this.#pending >= this.#maxPending) {
      return Promise.reject(new PlinthError('BUSY', `too many commands waiting (${this.#maxPending}); retry later`, { pending: this.#pending }));
    }
    this.#pending += 1;
    const run = this.#tail.then(() => this.#applyAndPersist(command));
    this.#tail = run.catch(() => undefined).finally(() => {
      this.#pending -= 1;
    });
    return run;
  }

  /** Refuse new proposals and wait for the ones already queued. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#tail;
  }

  async #applyAndPersist(command: Command): Promise<CommandResult> {
    const outcome = applyCommand(this.#state, command);
    if (outcome instanceof PlinthError) throw outcome;
    const index = this.#appliedIndex + 1;
    const operations: Parameters<CommandLogStorage['batch']>[0] = [
      { type: 'put', key: entryKey(index), value: command },
      { type: 'put', key: APPLIED_KEY, value: { appliedIndex: index, state: outcome.state } satisfies AppliedRecord },
    ];
    if (index > this.#retainedEntries) operations.push({ type: 'del', key: entryKey(index - this.#retainedEntries) });
    await this.#storage.batch(operations, { sync: true });
    // Only now, with the entry durable, does the in-memory state move on.
    this.#state = outcome.state;
    this.#appliedIndex = index;
    this.#logger.debug({ index, command: command.type }, 'applied command');
    return outcome.result;
  }

  async #replay(): Promise<void> {
    const replayed: Array<{ index: number; command: Command }> = [];
    for await (const value of this.#storage.values({ gt: entryKey(this.#appliedIndex), lt: ENTRY_RANGE_END })) {
      replayed.push({ index: this.#appliedIndex + replayed.length + 1, command: decodeCommand(value) });
    }
    for (const { index, command } of replayed) {
      const outcome = applyCommand(this.#state, command);
      if (outcome instanceof PlinthError) {
        this.#logger.warn({ index, command: command.type, code: outcome.code, err: outcome }, 'replayed command refused; skipped');
      } else {
        this.#state = outcome.state;
      }
      this.#appliedIndex = index;
    }
    if (replayed.length > 0) {
      await this.#storage.batch([{ type: 'put', key: APPLIED_KEY, value: { appliedIndex: this.#appliedIndex, state: this.#state } }], { sync: true });
      this.#logger.info({ count: replayed.length, appliedIndex: this.#appliedIndex }, 'replayed command log entries');
    }
  }
}

function decodeApplied(value: unknown): AppliedRecord {
  if (typeof value === 'object' && value !== null && 'appliedIndex' in value && 'state' in value) {
    const { appliedIndex, state } = value;
    if (Number.isSafeInteger(appliedIndex) && typeof appliedIndex === 'number' && isClusterState(state)) {
      return { appliedIndex, state };
    }
  }
  throw new PlinthError('INTERNAL', 'the stored cluster state is corrupt (expected {appliedIndex, state})');
}

function isClusterState(value: unknown): value is ClusterState {
  if (typeof value !== 'object' || value === null) return false;
  const record = value as Record<string, unknown>;
  return (
    (record['clusterId'] === null || typeof record['clusterId'] === 'string') &&
    typeof record['nodes'] === 'object' &&
    record['nodes'] !== null &&
    typeof record['volumes'] === 'object' &&
    record['volumes'] !== null
  );
}
