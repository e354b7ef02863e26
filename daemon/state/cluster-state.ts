/**
 * The replicated cluster state: what every node agrees on (ARCHITECTURE
 * "daemon" room). Plain JSON all the way down, so the local command log can
 * persist it as is and the Raft issue can snapshot it unchanged. Records are
 * immutable; applyCommand returns new objects and never edits old ones.
 */
export interface NodeAddresses {
  readonly api: string;
  readonly peer: string;
  readonly nbd: string;
  readonly iscsi: string;
}

export interface NodeRecord {
  readonly id: string;
  readonly addresses: NodeAddresses;
}

export interface VolumeRecord {
  readonly id: string;
  readonly name: string;
  readonly sizeBytes: number;
  readonly replicaCount: number;
  /** ISO-8601, decided by the proposer. */
  readonly createdAt: string;
  /** Node that owns (serves) the volume; null when detached. */
  readonly attachedTo: string | null;
  /** Bumped by every attach (ARCHITECTURE invariant 3); replicas fence lower ones. */
  readonly generation: number;
  /** Node ids holding a replica, in placement order. */
  readonly replicaNodeIds: readonly string[];
}

export interface ClusterState {
  /** Set once by cluster.init at bootstrap. */
  readonly clusterId: string | null;
  /** Keyed by node id. */
  readonly nodes: Readonly<Record<string, NodeRecord>>;
  /** Keyed by volume name: every lookup from NBD, iSCSI and REST is by name. */
  readonly volumes: Readonly<Record<string, VolumeRecord>>;
}

export function emptyClusterState(): ClusterState {
  return { clusterId: null, nodes: {}, volumes: {} };
}

export function nodeCount(state: ClusterState): number {
  return Object.keys(state.nodes).length;
}

/** Own-property lookup, so a volume called "constructor" or "__proto__" is just a missing key. */
export function findVolume(state: ClusterState, name: string): VolumeRecord | undefined {
  return Object.hasOwn(state.volumes, name) ? state.volumes[name] : undefined;
}

export function findNode(state: ClusterState, id: string): NodeRecord | undefined {
  return Object.hasOwn(state.nodes, id) ? state.nodes[id] : undefined;
}
