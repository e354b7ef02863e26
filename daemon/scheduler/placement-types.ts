/**
 * What the scheduler sees of the cluster: plain data, so placement is a pure
 * function. The Raft proposer runs it and puts the chosen node ids in the
 * command; apply never re-runs it, yet it is deterministic (same input and
 * seed, same answer) so a retried proposal or a test replays exactly.
 */

export interface NodeLabels {
  readonly zone?: string;
  readonly rack?: string;
}

export interface SchedulerNode {
  readonly id: string;
  readonly labels: NodeLabels;
  readonly freeBytes: number;
  readonly capacityBytes: number;
  readonly up: boolean;
}

export interface PlacementRequest {
  readonly nodes: readonly SchedulerNode[];
  readonly replicaCount: number;
  readonly sizeBytes: number;
  /** Data locality: placed first when it can hold the volume (the node the volume attaches on). */
  readonly preferNodeId?: string;
  /** Nodes that must not get a replica (they already hold one, or are draining). */
  readonly exclude?: readonly string[];
  /**
   * With a seed, nodes of equal spread are drawn at random weighted by free
   * bytes; without one, the node with the most free bytes wins, ties by id.
   */
  readonly seed?: number;
  /** Zone/rack spread already used by replicas that stay (adding replicas to an existing volume). */
  readonly existingNodeIds?: readonly string[];
}

export interface RetireRequest {
  readonly nodes: readonly SchedulerNode[];
  /** Nodes holding the volume's replicas now (one more than the replica count). */
  readonly replicaNodeIds: readonly string[];
  /** The owner: its replica never retires (data locality). */
  readonly ownerNodeId: string;
}
