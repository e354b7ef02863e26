import { PlinthError } from '../../../common/plinth-error.js';
import type { DataPlaneCluster, PeerAddress, PlacedReplica, ReplicaHealth, VolumePlacement } from '../../../daemon/volume/data-plane-cluster.js';

/**
 * An in-memory cluster state for data-plane tests: the same rules the Raft
 * state machine applies (attach bumps the generation; replica state changes
 * from a stale generation are refused), committed at once, with a log of
 * what was committed so tests can check invariant 2's ordering.
 */
export class FakeCluster implements DataPlaneCluster {
  placement: VolumePlacement;
  readonly up = new Map<string, boolean>();
  readonly peers = new Map<string, PeerAddress>();
  readonly committed: string[] = [];
  /** Set to make replica commands fail (no quorum). */
  refuseCommands = false;

  constructor(name: string, sizeBytes: number, replicaNodeIds: readonly string[]) {
    this.placement = {
      volumeId: `vol-${name}`,
      name,
      sizeBytes,
      generation: 0,
      ownerNodeId: null,
      replicas: replicaNodeIds.map((nodeId) => ({ nodeId, state: 'in-sync' })),
      graceMs: 600_000,
    };
    for (const nodeId of replicaNodeIds) this.up.set(nodeId, true);
  }

  volume(name: string): VolumePlacement | undefined {
    return name === this.placement.name ? this.placement : undefined;
  }

  nodeIsUp(nodeId: string): boolean {
    return this.up.get(nodeId) ?? false;
  }

  peerAddress(nodeId: string): PeerAddress | undefined {
    return this.peers.get(nodeId);
  }

  async attach(name: string, nodeId: string, force: boolean): Promise<VolumePlacement> {
    this.#require(name);
    const owner = this.placement.ownerNodeId;
    if (owner !== null && owner !== nodeId && !force) {
      throw new PlinthError('VOLUME_ATTACHED', `attached to ${owner}`, { attachedTo: owner });
    }
    this.placement = { ...this.placement, ownerNodeId: nodeId, generation: this.placement.generation + 1 };
    this.committed.push(`attach ${nodeId} g${this.placement.generation}`);
    return this.placement;
  }

  faultReplica(name: string, nodeId: string, generation: number): Promise<void> {
    return this.#setState(name, nodeId, generation, 'faulted');
  }

  markRebuilding(name: string, nodeId: string, generation: number): Promise<void> {
    return this.#setState(name, nodeId, generation, 'rebuilding');
  }

  markInSync(name: string, nodeId: string, generation: number): Promise<void> {
    return this.#setState(name, nodeId, generation, 'in-sync');
  }

  stateOf(nodeId: string): ReplicaHealth | undefined {
    return this.placement.replicas.find((replica) => replica.nodeId === nodeId)?.state;
  }

  async #setState(name: string, nodeId: string, generation: number, state: ReplicaHealth): Promise<void> {
    this.#require(name);
    if (this.refuseCommands) throw new PlinthError('TIMEOUT', 'no quorum');
    if (generation !== this.placement.generation) {
      throw new PlinthError('FENCED', `generation ${generation} is stale`, { generation });
    }
    // As daemon/state/replica-commands.ts: a replica that is not (any more) part of the volume is refused.
    if (!this.placement.replicas.some((replica) => replica.nodeId === nodeId)) {
      throw new PlinthError('INVALID_ARGUMENT', `volume ${name} has no replica on node ${nodeId}`, { name, nodeId });
    }
    const replicas: PlacedReplica[] = this.placement.replicas.map((replica) => (replica.nodeId === nodeId ? { nodeId, state } : replica));
    this.placement = { ...this.placement, replicas };
    this.committed.push(`${state} ${nodeId} g${generation}`);
  }

  #require(name: string): void {
    if (name !== this.placement.name) throw new PlinthError('VOLUME_NOT_FOUND', `no volume ${name}`);
  }
}
