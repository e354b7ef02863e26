import { PlinthError } from '../../common/plinth-error.js';
import type { BlockDevice } from '../block-device.js';
import type { CatchUpProgress } from './catch-up.js';
import { DirtyRegions } from './dirty-regions.js';

/**
 * The controller's view of a volume's replicas. States and what they mean
 * for I/O (ARCHITECTURE invariants 1, 2 and 4):
 *
 *   state       in Raft's in-sync set?   gets writes   serves reads
 *   in-sync     yes                      yes           yes
 *   leaving     yes, until the report    no            no
 *               commits (invariant 2)
 *   faulted     no                       no            no
 *   rebuilding  no                       yes           no
 *   joining     committing (markInSync)  yes           no
 *
 * A write that a `leaving` replica missed is acknowledged only after that
 * replica's report committed; a `joining` replica that fails is reported
 * once its join settled, so Raft never ends with it in-sync and behind.
 */

export interface VolumeReplica {
  readonly id: string;
  readonly nodeId: string;
  readonly device: BlockDevice;
  /** On this node: reads prefer it (data locality). */
  readonly local: boolean;
}

/** How a replica enters the controller: in-sync (default) or faulted (needs a rebuild). */
export interface ReplicaSpec extends VolumeReplica {
  readonly state?: 'in-sync' | 'faulted';
}

export type ReplicaState = 'in-sync' | 'leaving' | 'faulted' | 'rebuilding' | 'joining';

export interface ReplicaStatus {
  readonly id: string;
  readonly nodeId: string;
  readonly local: boolean;
  readonly state: ReplicaState;
  readonly rebuild: CatchUpProgress | null;
}

export interface ReplicaEntry {
  readonly replica: VolumeReplica;
  state: ReplicaState;
  /** Pending or settled failure report: resolves true once committed, false if it could not be. */
  leave: Promise<boolean> | undefined;
  /** Pending markInSync: resolves true once committed. */
  join: Promise<boolean> | undefined;
  /** What this replica missed while it did not receive writes (delta resync). */
  readonly dirty: DirtyRegions;
  catchUp: AbortController | undefined;
  rebuild: CatchUpProgress | null;
}

export class ReplicaSet {
  private readonly entries = new Map<string, ReplicaEntry>();
  private readonly maxDirtyRegions: number;

  constructor(specs: readonly ReplicaSpec[], maxDirtyRegions: number) {
    this.maxDirtyRegions = maxDirtyRegions;
    for (const spec of specs) this.add(spec, spec.state ?? 'in-sync');
  }

  add(replica: VolumeReplica, state: 'in-sync' | 'faulted'): ReplicaEntry {
    if (this.entries.has(replica.id)) {
      throw new PlinthError('INVALID_ARGUMENT', `replica ${replica.id} is already part of the volume`, {
        replicaId: replica.id,
      });
    }
    const entry: ReplicaEntry = {
      replica: { id: replica.id, nodeId: replica.nodeId, device: replica.device, local: replica.local },
      state,
      leave: undefined,
      join: undefined,
      // A replica that arrives faulted missed an unknown history: copy everything.
      dirty: state === 'faulted' ? DirtyRegions.all(this.maxDirtyRegions) : new DirtyRegions(this.maxDirtyRegions),
      catchUp: undefined,
      rebuild: null,
    };
    this.entries.set(replica.id, entry);
    return entry;
  }

  remove(replicaId: string): ReplicaEntry | undefined {
    const entry = this.entries.get(replicaId);
    this.entries.delete(replicaId);
    return entry;
  }

  get(replicaId: string): ReplicaEntry {
    const entry = this.entries.get(replicaId);
    if (entry === undefined) {
      throw new PlinthError('INVALID_ARGUMENT', `replica ${replicaId} is not part of the volume`, { replicaId });
    }
    return entry;
  }

  all(): ReplicaEntry[] {
    return [...this.entries.values()];
  }

  /** Every replica a mutation must reach. */
  writeTargets(): ReplicaEntry[] {
    const targets: ReplicaEntry[] = [];
    for (const entry of this.entries.values()) {
      if (entry.state === 'in-sync' || entry.state === 'rebuilding' || entry.state === 'joining') targets.push(entry);
    }
    return targets;
  }

  /** In-sync replicas, local first, then by id so the order is stable. */
  readSources(): ReplicaEntry[] {
    return this.all()
      .filter((entry) => entry.state === 'in-sync')
      .sort((a, b) => Number(b.replica.local) - Number(a.replica.local) || compareIds(a.replica.id, b.replica.id));
  }

  inSyncCount(): number {
    return this.all().filter((entry) => entry.state === 'in-sync').length;
  }

  /**
   * Remember a mutated range on every replica that did not acknowledge it.
   * `acknowledged` is a short list of entries (a volume has a handful of
   * replicas): no Set per write on the data path.
   */
  recordMissed(offset: number, lengthBytes: number, acknowledged: readonly ReplicaEntry[]): void {
    for (const entry of this.entries.values()) {
      if (!acknowledged.includes(entry)) entry.dirty.add(offset, lengthBytes);
    }
  }

  /** Failure reports a mutation must wait for: replicas formally in-sync that did not acknowledge it. */
  pendingLeavesExcept(acknowledged: readonly ReplicaEntry[]): readonly Promise<boolean>[] {
    let leaves: Promise<boolean>[] | undefined;
    for (const entry of this.entries.values()) {
      if (entry.leave !== undefined && !acknowledged.includes(entry)) (leaves ??= []).push(entry.leave);
    }
    return leaves ?? NO_LEAVES;
  }

  statuses(): ReplicaStatus[] {
    return this.all().map((entry) => ({
      id: entry.replica.id,
      nodeId: entry.replica.nodeId,
      local: entry.replica.local,
      state: entry.state,
      rebuild: entry.rebuild,
    }));
  }
}

const NO_LEAVES: readonly Promise<boolean>[] = Object.freeze([]);

function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
