/**
 * A step that moves a volume's data between nodes (issue 4 "Drain" and data
 * locality), decided by a pure plan from the committed state and executed
 * by a leader-side reconciler as one committed command. Moves only ever add
 * first and remove after the new replica is in sync, so the in-sync set never
 * drops below the replica count because of a move.
 */
export type MoveReason = 'drain' | 'locality' | 'repair';

export type ReplicaMove =
  /** replica.add: a new replica (rebuilding) that the owner's rebuild fills by a full copy. */
  | { readonly kind: 'add-replica'; readonly volume: string; readonly nodeId: string; readonly reason: MoveReason }
  /** replica.remove: only once the replicas that stay hold the replica count in sync. */
  | { readonly kind: 'remove-replica'; readonly volume: string; readonly nodeId: string; readonly reason: MoveReason };

/** Why a drain cannot progress for one volume, in words an operator can act on. */
export interface DrainBlocker {
  readonly volume: string;
  /** The draining node this blocks. */
  readonly nodeId: string;
  readonly reason: string;
}

/** Volumes moving at once, per reconciler (a limit on everything: each move is a full copy). */
export const DEFAULT_MAX_MOVING_VOLUMES = 2;
