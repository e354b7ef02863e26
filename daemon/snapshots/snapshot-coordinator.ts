import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { isPlinthError, PlinthError, toError } from '../../common/plinth-error.js';
import { applyCommand } from '../state/apply-command.js';
import { findVolume, inSyncNodeIds, isNodeUp, type VolumeRecord } from '../state/cluster-state.js';
import type { Command } from '../state/commands.js';
import { assertSnapshotName, findSnapshot, requireSnapshot, type SnapshotRecord } from '../state/snapshot-commands.js';
import { expectVolumeResult, type CommandProposer } from '../control/command-proposer.js';
import type { SnapshotReplicaClient, VolumeAtGeneration } from './snapshot-replica-client.js';

/**
 * The cluster half of snapshots (issue 8; docs/snapshots.md "In the
 * cluster"): take the pool snapshots on the replicas, then commit what was
 * taken. Runs on the API node, or, for a volume attached elsewhere, on its
 * owner (the only node that can pause its writes; `forwardToOwner`).
 *
 * Create, crash-consistent: the owner pauses its ReplicatedVolume (new
 * writes wait, in-flight ones drain, bounded by pauseTimeoutMs), every
 * in-sync replica takes the snapshot with the same id at the volume's
 * generation, the owner resumes, then `snapshot.create` commits with those
 * replicas as holders. A detached volume needs no pause; a new owner racing
 * in raises the replicas' generation and the requests fail FENCED (retry).
 * A failure on any replica fails the whole snapshot and deletes the copies
 * already taken (best effort; strays are also swept by the applied-state
 * watcher): a snapshot is never recorded on fewer holders than the in-sync set.
 */

export interface SnapshotCoordinatorOptions {
  readonly nodeId: string;
  /** Longest the owner holds new writes back while the replicas take the snapshot. */
  readonly pauseTimeoutMs?: number;
}

/** The owner's ReplicatedVolume as far as a snapshot needs it (IoGate pause with drain). */
export interface PausableVolume {
  pause(): Promise<void>;
  resume(): void;
}

export interface SnapshotCoordinatorModules {
  readonly commands: CommandProposer;
  /** SNAPSHOT_CREATE/DELETE, REVERT and CLONE on one node (SnapshotReplicaClient). */
  readonly replicas: Pick<SnapshotReplicaClient, 'run' | 'clone'>;
  /** The live session's volume when it is attached (and open) here. */
  readonly localVolume: (name: string) => PausableVolume | undefined;
  /** Ask the owner to take the snapshot (peer RPC); absent: refused with VOLUME_ATTACHED naming the owner. */
  readonly forwardToOwner?: (ownerNodeId: string, request: CreateSnapshotRequest) => Promise<SnapshotRecord>;
  /** Group snapshots: hold another node's volume writes (peer RPC `volume-pause`; null: not served there) and let them go. */
  readonly pauseOwner?: (ownerNodeId: string, volume: string, holdMs: number) => Promise<{ token: string } | null>;
  readonly resumeOwner?: (ownerNodeId: string, volume: string, token: string) => Promise<void>;
  readonly logger: Logger;
  readonly clock?: () => Date;
  readonly newId?: () => string;
}

export interface CreateSnapshotRequest {
  readonly volume: string;
  readonly snapshot: string;
  readonly groupId?: string;
  /** Set on the owner serving a forwarded request: it never forwards again (no loops on a stale view). */
  readonly forwarded?: boolean;
}

const DEFAULT_PAUSE_TIMEOUT_MS = 10_000;
/** A remote owner's hold outlasts the coordinator's budget by this much (it starts a little later, on another clock). */
const REMOTE_HOLD_MARGIN_MS = 5000;
/** Volumes in one group snapshot. */
export const MAX_GROUP_VOLUMES = 16;

/** What a group snapshot took: one snapshot per volume, sharing groupId. */
export interface GroupSnapshot {
  readonly groupId: string;
  readonly snapshots: readonly { readonly volume: string; readonly snapshot: SnapshotRecord }[];
}

/** A paused volume and how to let it go. */
interface PausedVolume {
  readonly name: string;
  readonly resume: () => Promise<void>;
}

export class SnapshotCoordinator {
  readonly #options: SnapshotCoordinatorOptions;
  readonly #modules: SnapshotCoordinatorModules;
  readonly #clock: () => Date;
  readonly #newId: () => string;

  constructor(options: SnapshotCoordinatorOptions, modules: SnapshotCoordinatorModules) {
    this.#options = options;
    this.#modules = modules;
    this.#clock = modules.clock ?? (() => new Date());
    this.#newId = modules.newId ?? randomUUID;
  }

  /** `snapshot create VOL SNAP`. Throws VOLUME_NOT_FOUND, INVALID_NAME, SNAPSHOT_EXISTS, FENCED (retry), TIMEOUT, IO_ERROR. */
  async createSnapshot(request: CreateSnapshotRequest): Promise<SnapshotRecord> {
    await this.#modules.commands.barrier?.();
    assertSnapshotName(request.snapshot);
    const volume = this.#requireVolume(request.volume);
    if (findSnapshot(volume, request.snapshot) !== undefined) {
      throw new PlinthError('SNAPSHOT_EXISTS', `volume ${volume.name} already has a snapshot ${JSON.stringify(request.snapshot)}`, { name: volume.name, snapshot: request.snapshot });
    }
    const owner = volume.attachedTo;
    if (owner !== null && owner !== this.#options.nodeId && !isNodeUp(this.#modules.commands.state, owner)) {
      // A partitioned owner may still be writing at this generation: the replicas' copies could differ.
      throw new PlinthError('VOLUME_ATTACHED', `volume ${volume.name} is attached to node ${owner}, which is down: snapshot it once it failed over (attach it elsewhere)`, {
        name: volume.name,
        attachedTo: owner,
      });
    }
    if (owner !== null && owner !== this.#options.nodeId) {
      if (this.#modules.forwardToOwner === undefined || request.forwarded === true) {
        throw new PlinthError('VOLUME_ATTACHED', `volume ${volume.name} is attached to node ${owner}: take the snapshot through that node's API`, { name: volume.name, attachedTo: owner });
      }
      this.#modules.logger.info({ volume: volume.name, owner }, 'asking the owner to take the snapshot');
      return this.#modules.forwardToOwner(owner, { volume: request.volume, snapshot: request.snapshot, ...(request.groupId === undefined ? {} : { groupId: request.groupId }) });
    }
    const snapshotId = this.#newId();
    const paused = owner === this.#options.nodeId ? this.#modules.localVolume(volume.name) : undefined;
    const taken = paused === undefined ? await this.#takeOnReplicas(volume.name, snapshotId) : await this.#whilePaused(volume.name, paused, () => this.#takeOnReplicas(volume.name, snapshotId));
    const command: Command = {
      type: 'snapshot.create',
      name: volume.name,
      snapshotId,
      snapshotName: request.snapshot,
      createdAt: this.#clock().toISOString(),
      generation: taken.generation,
      holders: taken.holders,
      ...(request.groupId === undefined ? {} : { groupId: request.groupId }),
    };
    try {
      const committed = expectVolumeResult(await this.#modules.commands.propose(command));
      const snapshot = requireSnapshot(committed, request.snapshot);
      this.#modules.logger.info({ volume: volume.name, snapshot: snapshot.name, id: snapshotId, holders: snapshot.holders, generation: snapshot.generation }, 'snapshot created');
      return snapshot;
    } catch (err) {
      await this.#deleteEverywhere(taken, snapshotId, taken.holders);
      throw err;
    }
  }

  /**
   * `snapshot create-group SNAP VOL1,VOL2,…` (issue 8 "Group snapshots"):
   * one consistent point across volumes. Every attached volume's owner
   * pauses (drained) before any replica takes anything, so no write to one
   * volume that followed a write to another is in the group without it;
   * then every in-sync replica of every volume takes its snapshot, all
   * owners resume, and each volume's snapshot.create commits with the same
   * groupId. Remote owners hold the pause for pauseTimeoutMs at most on
   * their own. All or nothing: a failure deletes what was taken (and the
   * snapshots already committed).
   */
  async createGroup(snapshotName: string, volumeNames: readonly string[]): Promise<GroupSnapshot> {
    await this.#modules.commands.barrier?.();
    assertSnapshotName(snapshotName);
    if (volumeNames.length === 0 || volumeNames.length > MAX_GROUP_VOLUMES || new Set(volumeNames).size !== volumeNames.length) {
      throw new PlinthError('INVALID_ARGUMENT', `a group snapshot names 1 to ${MAX_GROUP_VOLUMES} distinct volumes`, { volumes: volumeNames });
    }
    for (const name of volumeNames) {
      if (findSnapshot(this.#requireVolume(name), snapshotName) !== undefined) {
        throw new PlinthError('SNAPSHOT_EXISTS', `volume ${name} already has a snapshot ${JSON.stringify(snapshotName)}`, { name, snapshot: snapshotName });
      }
    }
    const groupId = this.#newId();
    const taken: { name: string; snapshotId: string; at: VolumeAtGeneration & { holders: string[] } }[] = [];
    // The budget starts before the first pause; remote holds outlast it (REMOTE_HOLD_MARGIN_MS), so no owner resumes early.
    const deadlineMs = performance.now() + (this.#options.pauseTimeoutMs ?? DEFAULT_PAUSE_TIMEOUT_MS);
    const paused = await this.#pauseAll(volumeNames, deadlineMs);
    try {
      await this.#withinPauseBudget(deadlineMs, async () => {
        await Promise.all(
          volumeNames.map(async (name) => {
            const snapshotId = this.#newId();
            taken.push({ name, snapshotId, at: await this.#takeOnReplicas(name, snapshotId) });
          }),
        );
      });
    } catch (err) {
      await Promise.all(taken.map((item) => this.#deleteEverywhere(item.at, item.snapshotId, item.at.holders)));
      throw err;
    } finally {
      await this.#resumeAll(paused);
    }
    return this.#commitGroup(groupId, snapshotName, taken);
  }

  async #commitGroup(groupId: string, snapshotName: string, taken: readonly { name: string; snapshotId: string; at: VolumeAtGeneration & { holders: string[] } }[]): Promise<GroupSnapshot> {
    const committed: { volume: string; snapshot: SnapshotRecord }[] = [];
    try {
      for (const item of taken) {
        const command: Command = { type: 'snapshot.create', name: item.name, snapshotId: item.snapshotId, snapshotName, createdAt: this.#clock().toISOString(), generation: item.at.generation, holders: item.at.holders, groupId };
        committed.push({ volume: item.name, snapshot: requireSnapshot(expectVolumeResult(await this.#modules.commands.propose(command)), snapshotName) });
      }
    } catch (err) {
      // All or nothing: the committed ones go (their holders free them), the others' copies are deleted now.
      for (const done of committed) {
        await this.#modules.commands.propose({ type: 'snapshot.delete', name: done.volume, snapshotName }).catch((deleteErr: unknown) => {
          this.#modules.logger.error({ err: toError(deleteErr), volume: done.volume, groupId }, 'could not undo a group snapshot member; delete it by hand');
        });
      }
      const uncommitted = taken.filter((item) => !committed.some((done) => done.volume === item.name));
      await Promise.all(uncommitted.map((item) => this.#deleteEverywhere(item.at, item.snapshotId, item.at.holders)));
      throw err;
    }
    this.#modules.logger.info({ groupId, snapshot: snapshotName, volumes: committed.map((item) => item.volume) }, 'group snapshot created');
    return { groupId, snapshots: committed };
  }

  /** Pause every attached volume's owner (here or over peer RPC), all before any snapshot; on a failure, resume those paused. */
  async #pauseAll(volumeNames: readonly string[], deadlineMs: number): Promise<PausedVolume[]> {
    const holdMs = (this.#options.pauseTimeoutMs ?? DEFAULT_PAUSE_TIMEOUT_MS) + REMOTE_HOLD_MARGIN_MS;
    const state = this.#modules.commands.state;
    /** Local volumes are listed before their pause completes: one that does not drain in time is resumed too. */
    const localPauses: PausedVolume[] = [];
    const outcomes = await Promise.allSettled(
      volumeNames.map(async (name): Promise<PausedVolume | undefined> => {
        const owner = this.#requireVolume(name).attachedTo;
        if (owner === null) return undefined;
        if (!isNodeUp(state, owner)) {
          throw new PlinthError('VOLUME_ATTACHED', `volume ${name} is attached to node ${owner}, which is down: snapshot it once it failed over`, { name, attachedTo: owner });
        }
        if (owner === this.#options.nodeId) {
          const local = this.#modules.localVolume(name);
          if (local === undefined) return undefined;
          localPauses.push({ name, resume: async () => local.resume() });
          await this.#withinPauseBudget(deadlineMs, () => local.pause());
          return undefined;
        }
        const { pauseOwner, resumeOwner } = this.#modules;
        if (pauseOwner === undefined || resumeOwner === undefined) {
          throw new PlinthError('VOLUME_ATTACHED', `volume ${name} is attached to node ${owner}, which this node cannot pause`, { name, attachedTo: owner });
        }
        const hold = await pauseOwner(owner, name, holdMs);
        return hold === null ? undefined : { name, resume: () => resumeOwner(owner, name, hold.token) };
      }),
    );
    const paused = [...localPauses, ...outcomes.flatMap((outcome) => (outcome.status === 'fulfilled' && outcome.value !== undefined ? [outcome.value] : []))];
    const failed = outcomes.find((outcome) => outcome.status === 'rejected');
    if (failed !== undefined) {
      await this.#resumeAll(paused);
      throw firstFailure([failed], 'a group snapshot could not pause every volume');
    }
    return paused;
  }

  async #resumeAll(paused: readonly PausedVolume[]): Promise<void> {
    const outcomes = await Promise.allSettled(paused.map((item) => item.resume()));
    outcomes.forEach((outcome, index) => {
      // A remote owner resumes by itself when its hold expires.
      if (outcome.status === 'rejected') this.#modules.logger.warn({ err: toError(outcome.reason), volume: paused[index]?.name }, 'could not resume a volume after a group snapshot; its hold expires on its own');
    });
  }

  async #withinPauseBudget(deadlineMs: number, work: () => Promise<void>): Promise<void> {
    const timeoutMs = this.#options.pauseTimeoutMs ?? DEFAULT_PAUSE_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      const message = `the group snapshot did not complete within the ${timeoutMs} ms write pause; writes resumed, retry`;
      timer = setTimeout(() => reject(new PlinthError('TIMEOUT', message, { timeoutMs })), Math.max(0, deadlineMs - performance.now()));
    });
    try {
      await Promise.race([work(), expired]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** `snapshot rm VOL SNAP`: commit; every holder frees its copy when it applies it (AppliedStateWatcher). */
  async deleteSnapshot(volumeName: string, snapshotName: string): Promise<void> {
    await this.#modules.commands.barrier?.();
    await this.#modules.commands.propose({ type: 'snapshot.delete', name: volumeName, snapshotName });
    this.#modules.logger.info({ volume: volumeName, snapshot: snapshotName }, 'snapshot deleted');
  }

  /**
   * `volume clone SRC@SNAP NEW`: every holder that is up makes the pool
   * clone first (no data copied), then `volume.clone` commits with those as
   * the clone's replicas; a committed clone therefore always has its data.
   */
  async cloneVolume(volumeName: string, snapshotName: string, cloneName: string): Promise<VolumeRecord> {
    await this.#modules.commands.barrier?.();
    const source = this.#requireVolume(volumeName);
    const snapshot = requireSnapshot(source, snapshotName);
    const state = this.#modules.commands.state;
    const up = snapshot.holders.filter((nodeId) => isNodeUp(state, nodeId));
    const base = { type: 'volume.clone' as const, name: volumeName, snapshotName, cloneId: this.#newId(), cloneName, createdAt: this.#clock().toISOString() };
    // Refused names, an existing clone name and the like cost nothing on the replicas.
    this.#refuseEarly({ ...base, holders: up.length === 0 ? snapshot.holders : up });
    if (up.length === 0) throw noHolderUp(source.name, snapshot);
    const at = volumeAt(source);
    const outcomes = await Promise.allSettled(up.map((nodeId) => this.#modules.replicas.clone(nodeId, at, snapshot.id, base.cloneId)));
    const cloned = up.filter((_, index) => outcomes[index]?.status === 'fulfilled');
    outcomes.forEach((outcome, index) => {
      if (outcome.status === 'rejected') this.#modules.logger.warn({ err: toError(outcome.reason), node: up[index] }, 'clone failed on a holder; the clone will have one replica fewer');
    });
    if (cloned.length === 0) throw firstFailure(outcomes, `volume ${source.name}@${snapshot.name}: no holder could make the clone`);
    const clone = expectVolumeResult(await this.#modules.commands.propose({ ...base, holders: cloned }));
    this.#modules.logger.info({ source: source.name, snapshot: snapshot.name, clone: clone.name, replicas: cloned }, 'volume cloned');
    return clone;
  }

  /**
   * `volume revert VOL SNAP`, detached volumes only: REVERT on every in-sync
   * replica at the volume's generation (refused up front when one of them
   * does not hold the snapshot), then `volume.revert` commits a new
   * generation. A replica whose REVERT failed is committed faulted first so
   * it cannot serve pre-revert data (it is rebuilt by a full copy).
   */
  async revertVolume(volumeName: string, snapshotName: string): Promise<VolumeRecord> {
    await this.#modules.commands.barrier?.();
    const volume = this.#requireVolume(volumeName);
    const snapshot = requireSnapshot(volume, snapshotName);
    const command = { type: 'volume.revert' as const, name: volume.name, snapshotName, generation: volume.generation, at: this.#clock().toISOString() };
    this.#refuseEarly(command);
    const targets = inSyncNodeIds(volume);
    const at = volumeAt(volume);
    const outcomes = await Promise.allSettled(targets.map((nodeId) => this.#modules.replicas.run(nodeId, 'revert', at, snapshot.id)));
    const failed = targets.filter((_, index) => outcomes[index]?.status === 'rejected');
    if (failed.length === targets.length) throw firstFailure(outcomes, `volume ${volume.name}: no replica could revert to ${snapshot.name}`);
    for (const nodeId of failed) {
      this.#modules.logger.warn({ volume: volume.name, node: nodeId }, 'revert failed on a replica: committing it faulted');
      await this.#modules.commands.propose({ type: 'replica.fault', name: volume.name, nodeId, generation: volume.generation, at: command.at });
    }
    const reverted = expectVolumeResult(await this.#modules.commands.propose(command));
    this.#modules.logger.info({ volume: volume.name, snapshot: snapshot.name, generation: reverted.generation, faulted: failed }, 'volume reverted');
    return reverted;
  }

  /** Hold the owner's writes for at most pauseTimeoutMs around `work`; always resume. */
  async #whilePaused<T>(name: string, volume: PausableVolume, work: () => Promise<T>): Promise<T> {
    const timeoutMs = this.#options.pauseTimeoutMs ?? DEFAULT_PAUSE_TIMEOUT_MS;
    const startedMs = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new PlinthError('TIMEOUT', `volume ${name}: the snapshot did not complete within the ${timeoutMs} ms write pause; writes resumed, retry`, { name, timeoutMs })), timeoutMs);
    });
    try {
      return await Promise.race([(async () => {
        await volume.pause();
        return work();
      })(), expired]);
    } finally {
      clearTimeout(timer);
      volume.resume();
      this.#modules.logger.info({ volume: name, pausedMs: Math.round(performance.now() - startedMs) }, 'volume writes resumed after the snapshot');
    }
  }

  /** SNAPSHOT_CREATE on every in-sync replica (read after the pause: the set the owner drained to). */
  async #takeOnReplicas(name: string, snapshotId: string): Promise<VolumeAtGeneration & { holders: string[] }> {
    const volume = this.#requireVolume(name);
    const holders = inSyncNodeIds(volume);
    const at = volumeAt(volume);
    const outcomes = await Promise.allSettled(holders.map((nodeId) => this.#modules.replicas.run(nodeId, 'create', at, snapshotId)));
    const failed = holders.filter((_, index) => outcomes[index]?.status === 'rejected');
    if (failed.length > 0) {
      await this.#deleteEverywhere(at, snapshotId, holders);
      const first = firstFailure(outcomes, `volume ${name}: the snapshot failed on ${failed.join(', ')}`);
      throw new PlinthError(first.code, `volume ${name}: the snapshot failed on ${failed.join(', ')} (no snapshot was recorded): ${first.message}`, { name, failed }, { cause: first });
    }
    return { ...at, holders };
  }

  /** Best effort: copies left behind are swept by the applied-state watcher later. */
  async #deleteEverywhere(at: VolumeAtGeneration, snapshotId: string, nodeIds: readonly string[]): Promise<void> {
    const outcomes = await Promise.allSettled(nodeIds.map((nodeId) => this.#modules.replicas.run(nodeId, 'delete', at, snapshotId)));
    outcomes.forEach((outcome, index) => {
      if (outcome.status === 'rejected') this.#modules.logger.warn({ err: toError(outcome.reason), node: nodeIds[index], snapshotId }, 'could not delete a snapshot copy of a failed snapshot; the stray sweep will');
    });
  }

  #refuseEarly(command: Command): void {
    const outcome = applyCommand(this.#modules.commands.state, command);
    if (outcome instanceof PlinthError) throw outcome;
  }

  #requireVolume(name: string): VolumeRecord {
    const volume = findVolume(this.#modules.commands.state, name);
    if (volume === undefined) throw new PlinthError('VOLUME_NOT_FOUND', `volume ${name} does not exist`, { name });
    return volume;
  }
}

function volumeAt(volume: VolumeRecord): VolumeAtGeneration {
  return { volumeId: volume.id, sizeBytes: volume.sizeBytes, generation: volume.generation };
}

function noHolderUp(name: string, snapshot: SnapshotRecord): PlinthError {
  return new PlinthError('IO_ERROR', `volume ${name}@${snapshot.name}: none of its holders (${snapshot.holders.join(', ')}) is up`, { name, snapshot: snapshot.name, holders: snapshot.holders });
}

function firstFailure(outcomes: readonly PromiseSettledResult<unknown>[], message: string): PlinthError {
  for (const outcome of outcomes) {
    if (outcome.status !== 'rejected') continue;
    const err = outcome.reason;
    if (isPlinthError(err)) return err;
    return new PlinthError('IO_ERROR', `${message}: ${toError(err).message}`, {}, { cause: err });
  }
  return new PlinthError('INTERNAL', message);
}
