import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { isPlinthError, PlinthError, toError } from '../../common/plinth-error.js';
import type { Pool } from '../../blockdev/pool/pool-types.js';
import type {
  ClusterView,
  ControlPlane,
  CreateVolumeRequest,
  NodeView,
  Readiness,
  RebuildProgressView,
  SnapshotGroupView,
  SnapshotSpaceView,
  SnapshotView,
  VolumeChapRequest,
  VolumeView,
} from '../control-plane.js';
import { drainProgress, planDrain } from '../reconciler/drain-plan.js';
import { applyCommand } from '../state/apply-command.js';
import { freeVolumeSpace } from '../volume/applied-state-watcher.js';
import { findVolume, type VolumeRecord } from '../state/cluster-state.js';
import type { Command } from '../state/commands.js';
import { expectVolumeResult, type CommandProposer } from './command-proposer.js';
import type { ReadinessTracker } from './readiness-tracker.js';
import { choosePlacement } from './volume-placement.js';
import { nodeView, snapshotView, volumeView } from './views.js';
import type { VolumeExports } from './volume-exports.js';
import type { SnapshotCoordinator } from '../snapshots/snapshot-coordinator.js';
import type { SnapshotRecord } from '../state/snapshot-commands.js';

export interface LocalControlPlaneOptions {
  readonly nodeId: string;
  readonly version: string;
}

export interface LocalControlPlaneModules {
  readonly commands: CommandProposer;
  readonly pool: Pool;
  readonly exports: VolumeExports;
  readonly readiness: ReadinessTracker;
  readonly logger: Logger;
  /** Proposer-side nondeterminism, injected (STYLE "inject every source of nondeterminism"). */
  readonly clock?: () => Date;
  readonly newId?: () => string;
  /** The owner's rebuild progress per replica node (data plane reconciler); absent without a data plane. */
  readonly rebuildProgress?: (volume: string) => ReadonlyMap<string, RebuildProgressView>;
  /** Issue 8: takes snapshots on the replicas and commits them (daemon/snapshots/); absent: snapshot calls are NOT_SUPPORTED. */
  readonly snapshots?: SnapshotCoordinator;
  /** The replica server lets go of a volume (and closes its snapshot read handles) before its space is freed. */
  readonly forgetReplica?: (volumeId: string) => Promise<void>;
}

/**
 * The ControlPlane of this node in the cluster: commands through the
 * CommandProposer (the Raft-backed RaftCommandLog in the daemon, forwarded to
 * the leader from a follower; LocalCommandLog in unit tests), reads after its
 * linearizable barrier, live facts from this node's pool and exports.
 *
 * Thin provisioning: createVolume does not reserve pool space, so the sum of
 * volume sizes may exceed the pool (overcommit). Space is taken extent by
 * extent as data is written; a write that finds the pool full fails NO_SPACE.
 */
export class LocalControlPlane implements ControlPlane {
  readonly #options: LocalControlPlaneOptions;
  readonly #modules: LocalControlPlaneModules;
  readonly #clock: () => Date;
  readonly #newId: () => string;

  constructor(options: LocalControlPlaneOptions, modules: LocalControlPlaneModules) {
    this.#options = options;
    this.#modules = modules;
    this.#clock = modules.clock ?? (() => new Date());
    this.#newId = modules.newId ?? randomUUID;
  }

  async cluster(): Promise<ClusterView> {
    const nodes = await this.nodes();
    const state = this.#modules.commands.state;
    return {
      clusterId: state.clusterId ?? '',
      leaderId: this.#leaderId(),
      nodeCount: nodes.length,
      volumeCount: Object.keys(state.volumes).length,
      capacityBytes: nodes.reduce((sum, node) => sum + node.capacityBytes, 0),
      usedBytes: nodes.reduce((sum, node) => sum + node.usedBytes, 0),
      version: this.#options.version,
    };
  }

  async nodes(): Promise<NodeView[]> {
    await this.#barrier();
    const localPool = this.#modules.pool.stats();
    const leaderId = this.#leaderId();
    const state = this.#modules.commands.state;
    const plan = planDrain(state);
    return Object.values(state.nodes)
      .sort((a, b) => a.id.localeCompare(b.id))
      .map((node) => {
        const isLocal = node.id === this.#options.nodeId;
        const drain = drainProgress(state, node.id, plan);
        return nodeView(node, { isLocal, isLeader: node.id === leaderId, pool: isLocal ? localPool : null, ...(drain === undefined ? {} : { drain }) });
      });
  }

  /** `node drain`: commit node.drain; the drain reconciler (leader) and the node itself do the moving. */
  async drainNode(nodeId: string): Promise<NodeView> {
    return this.#setDraining(nodeId, true);
  }

  /** `node undrain`: cancel; replicas already moved stay where they are. */
  async undrainNode(nodeId: string): Promise<NodeView> {
    return this.#setDraining(nodeId, false);
  }

  async #setDraining(nodeId: string, draining: boolean): Promise<NodeView> {
    await this.#modules.commands.propose({ type: 'node.drain', nodeId, draining, at: this.#clock().toISOString() });
    this.#modules.logger.info({ node: nodeId, draining }, draining ? 'node draining' : 'node drain cancelled');
    const view = (await this.nodes()).find((node) => node.id === nodeId);
    if (view === undefined) throw new PlinthError('NODE_NOT_FOUND', `node ${JSON.stringify(nodeId)} is not a member of the cluster`, { nodeId });
    return view;
  }

  /**
   * `node rm`: refused early by the state machine's rules (last in-sync
   * replica), then the Raft voter goes, then its record and replicas.
   */
  async removeNode(nodeId: string): Promise<void> {
    await this.#barrier();
    const command = { type: 'node.remove' as const, nodeId };
    this.#refuseEarly(command);
    await this.#modules.commands.removeVoter?.(nodeId);
    await this.#modules.commands.propose(command);
    this.#modules.logger.info({ node: nodeId }, 'node removed');
  }

  async listVolumes(): Promise<VolumeView[]> {
    await this.#barrier();
    return Object.values(this.#modules.commands.state.volumes)
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((volume) => this.#view(volume));
  }

  async getVolume(name: string): Promise<VolumeView> {
    await this.#barrier();
    return this.#view(this.#requireVolume(name));
  }

  async createVolume(request: CreateVolumeRequest): Promise<VolumeView> {
    await this.#barrier();
    const base = {
      type: 'volume.create' as const,
      id: this.#newId(),
      name: request.name,
      sizeBytes: request.sizeBytes,
      createdAt: this.#clock().toISOString(),
    };
    const asked = {
      ...base,
      ...(request.replicaCount === undefined ? {} : { replicaCount: request.replicaCount }),
      ...(request.graceMs === undefined ? {} : { graceMs: request.graceMs }),
    };
    // Name, size and count are refused with the state machine's own words before placement runs.
    this.#refuseEarly(asked);
    const command = { ...asked, placement: choosePlacement(this.#modules.commands.state, request, this.#options.nodeId) };
    const volume = expectVolumeResult(await this.#modules.commands.propose(command));
    this.#modules.logger.info({ volume: volume.name, id: volume.id, sizeBytes: volume.sizeBytes }, 'volume created');
    return this.#view(volume);
  }

  async resizeVolume(name: string, sizeBytes: number): Promise<VolumeView> {
    const volume = expectVolumeResult(await this.#modules.commands.propose({ type: 'volume.resize', name, sizeBytes }));
    // The command is the truth; the pool follows. Clients already connected
    // keep the size they negotiated (NBD has no resize notice) until they reconnect.
    try {
      await this.#modules.pool.resizeVolume(volume.id, volume.sizeBytes);
    } catch (err) {
      // Never opened here: the pool creates it at the committed size on first open.
      if (!isPlinthError(err, 'VOLUME_NOT_FOUND')) throw err;
    }
    this.#modules.logger.info({ volume: name, sizeBytes }, 'volume resized');
    return this.#view(volume);
  }

  async deleteVolume(name: string): Promise<void> {
    // A detach just committed through another node (or forwarded by this one) must be applied here before the check.
    await this.#barrier();
    const command = { type: 'volume.delete' as const, name };
    this.#refuseEarly(command);
    await this.#modules.exports.withVolumeReleased(name, {}, async (volume) => {
      // The command is still the authority (the state may have moved since the check).
      await this.#modules.commands.propose(command);
      // The AppliedStateWatcher frees every other replica holder's copy (and this one's too, idempotently).
      try {
        await freeVolumeSpace(this.#modules.pool, { volumeId: volume.id, name: volume.name, sizeBytes: volume.sizeBytes }, undefined, this.#modules.forgetReplica);
      } catch (err) {
        throw new PlinthError(
          'IO_ERROR',
          `volume ${name} was deleted but freeing its space failed: ${toError(err).message}`,
          { name, volumeId: volume.id },
          { cause: err },
        );
      }
      this.#modules.logger.info({ volume: name, id: volume.id }, 'volume deleted');
    });
  }

  async attachVolume(name: string, nodeId: string, options: { readonly force?: boolean } = {}): Promise<VolumeView> {
    const force = options.force === true;
    const command = force ? { type: 'volume.attach' as const, name, nodeId, force } : { type: 'volume.attach' as const, name, nodeId };
    this.#refuseEarly(command);
    const current = this.#requireVolume(name);
    // To this node: the exports open the volume here (with the data plane: a session, new generation).
    if (nodeId === this.#options.nodeId) return this.#view(await this.#modules.exports.attachHere(name, { force }));
    if (current.attachedTo !== this.#options.nodeId) {
      return this.#view(expectVolumeResult(await this.#modules.commands.propose(command)));
    }
    // Handing a volume over from this node: release the local store first so
    // nothing here writes under the old generation after the new one commits.
    const volume = await this.#modules.exports.withVolumeReleased(name, { force }, async () =>
      expectVolumeResult(await this.#modules.commands.propose(command)),
    );
    return this.#view(volume);
  }

  async detachVolume(name: string, options: { readonly force?: boolean } = {}): Promise<VolumeView> {
    const force = options.force === true;
    const volume = await this.#modules.exports.withVolumeReleased(name, { force }, async () =>
      expectVolumeResult(await this.#modules.commands.propose({ type: 'volume.detach', name })),
    );
    this.#modules.logger.info({ volume: name, force }, 'volume detached');
    return this.#view(volume);
  }

  readiness(): Readiness {
    return this.#modules.readiness.readiness();
  }

  /** Committed through Raft so every node's iSCSI target enforces it (daemon/state/volume-chap-commands.ts). */
  async setVolumeChap(name: string, request: VolumeChapRequest): Promise<VolumeView> {
    const command = {
      type: 'volume.chap' as const,
      name,
      user: request.user,
      secret: request.secret,
      ...(request.targetUser === undefined ? {} : { targetUser: request.targetUser }),
      ...(request.targetSecret === undefined ? {} : { targetSecret: request.targetSecret }),
    };
    const volume = expectVolumeResult(await this.#modules.commands.propose(command));
    // Names only: a secret never reaches a log line.
    this.#modules.logger.info({ volume: name, user: request.user, mutual: request.targetUser !== undefined }, 'volume iSCSI CHAP set');
    return this.#view(volume);
  }

  async clearVolumeChap(name: string): Promise<VolumeView> {
    const volume = expectVolumeResult(await this.#modules.commands.propose({ type: 'volume.chap', name }));
    this.#modules.logger.info({ volume: name }, 'volume iSCSI CHAP cleared');
    return this.#view(volume);
  }

  // --- issue 8: snapshots (daemon/snapshots/snapshot-coordinator.ts does the work) ---

  async listSnapshots(volumeName: string): Promise<SnapshotView[]> {
    await this.#barrier();
    const volume = this.#requireVolume(volumeName);
    return (volume.snapshots ?? []).map((snapshot) => snapshotView(volume, snapshot, this.#snapshotSpace(volume, snapshot)));
  }

  async createSnapshot(volumeName: string, snapshotName: string): Promise<SnapshotView> {
    const snapshot = await this.#snapshots().createSnapshot({ volume: volumeName, snapshot: snapshotName });
    await this.#barrier();
    const volume = this.#requireVolume(volumeName);
    return snapshotView(volume, snapshot, this.#snapshotSpace(volume, snapshot));
  }

  async createSnapshotGroup(name: string, volumes: readonly string[]): Promise<SnapshotGroupView> {
    const group = await this.#snapshots().createGroup(name, volumes);
    await this.#barrier();
    const snapshots = group.snapshots.map(({ volume: volumeName, snapshot }) => {
      const volume = this.#requireVolume(volumeName);
      return snapshotView(volume, snapshot, this.#snapshotSpace(volume, snapshot));
    });
    return { groupId: group.groupId, name, snapshots };
  }

  async deleteSnapshot(volumeName: string, snapshotName: string): Promise<void> {
    await this.#snapshots().deleteSnapshot(volumeName, snapshotName);
  }

  async cloneVolume(volumeName: string, snapshotName: string, cloneName: string): Promise<VolumeView> {
    return this.#view(await this.#snapshots().cloneVolume(volumeName, snapshotName, cloneName));
  }

  async revertVolume(volumeName: string, snapshotName: string): Promise<VolumeView> {
    return this.#view(await this.#snapshots().revertVolume(volumeName, snapshotName));
  }

  /** The pool's accounting, when this node holds the snapshot; another node's numbers are its own to give. */
  #snapshotSpace(volume: VolumeRecord, snapshot: SnapshotRecord): SnapshotSpaceView | null {
    if (!snapshot.holders.includes(this.#options.nodeId)) return null;
    const info = this.#modules.pool.listSnapshots(volume.id).find((candidate) => candidate.snapshotId === snapshot.id);
    if (info === undefined) return null;
    return { measuredOn: this.#options.nodeId, exclusiveBytes: info.exclusiveBytes, sharedBytes: info.sharedBytes };
  }

  #snapshots(): SnapshotCoordinator {
    const snapshots = this.#modules.snapshots;
    if (snapshots === undefined) throw new PlinthError('NOT_SUPPORTED', 'snapshots are not available on this node');
    return snapshots;
  }

  #leaderId(): string | null {
    const leaderId = this.#modules.commands.leaderId;
    // A proposer without Raft (LocalCommandLog) is its own leader.
    return leaderId === undefined ? this.#options.nodeId : leaderId;
  }

  async #barrier(): Promise<void> {
    await this.#modules.commands.barrier?.();
  }

  #view(volume: VolumeRecord): VolumeView {
    const holdsReplica = volume.replicas.some((replica) => replica.nodeId === this.#options.nodeId);
    return volumeView(volume, {
      allocatedBytes: holdsReplica ? this.#modules.pool.volumeAllocatedBytes(volume.id) : 0,
      connections: this.#modules.exports.connectionCount(volume.id),
      ...(volume.attachedTo === this.#options.nodeId && this.#modules.rebuildProgress !== undefined
        ? { rebuilds: this.#modules.rebuildProgress(volume.name) }
        : {}),
    });
  }

  /**
   * Ask the state machine before touching local stores, so a command it would
   * refuse (attached, unknown node) costs nothing. The proposal that follows
   * stays the authority: the state may move in between.
   */
  #refuseEarly(command: Command): void {
    const refusal = applyCommand(this.#modules.commands.state, command);
    if (refusal instanceof PlinthError) throw refusal;
  }

  #requireVolume(name: string): VolumeRecord {
    const volume = findVolume(this.#modules.commands.state, name);
    if (volume === undefined) throw new PlinthError('VOLUME_NOT_FOUND', `volume ${name} does not exist`, { name });
    return volume;
  }
}
