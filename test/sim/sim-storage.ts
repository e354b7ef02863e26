/**
 * In-memory "disk" for one simulated server: it keeps exactly what each Ready
 * told it to persist (and compaction snapshots), nothing else, so a crash
 * loses only what a real node would lose.
 */
import type { Entry, HardState, RaftStorageState, Ready, Snapshot } from '../../consensus/raft/index.js';
import { emptyState } from '../../consensus/raft/index.js';
import { PlinthError } from '../../common/plinth-error.js';

export class SimStorage {
  private hardState: HardState;
  private snapshot: Snapshot | null;
  private entries: Entry[];

  constructor(initial: RaftStorageState = emptyState()) {
    this.hardState = initial.hardState;
    this.snapshot = initial.snapshot;
    this.entries = [...initial.entries];
  }

  /** Step 1 of the Ready loop: snapshot, then entries (overwriting a suffix), then hard state. */
  persist(ready: Ready): void {
    if (ready.snapshot !== undefined) this.installSnapshot(ready.snapshot);
    const first = ready.entries[0];
    if (first !== undefined) {
      const base = this.baseIndex();
      if (first.index <= base) throw new PlinthError('INTERNAL', `sim storage: entry ${first.index} at or below snapshot ${base}`);
      const keep = first.index - base - 1;
      if (keep > this.entries.length) throw new PlinthError('INTERNAL', `sim storage: gap before entry ${first.index}`);
      this.entries.length = keep;
      this.entries.push(...ready.entries);
    }
    if (ready.hardState !== undefined) this.hardState = ready.hardState;
  }

  /** A snapshot from the leader replaces the log unless the log already extends past it. */
  private installSnapshot(snapshot: Snapshot): void {
    const { index, term } = snapshot.metadata;
    const local = this.entries.find((e) => e.index === index);
    this.entries = local !== undefined && local.term === term ? this.entries.filter((e) => e.index > index) : [];
    this.snapshot = snapshot;
  }

  /** Compaction by the application (RaftCore.compact result). */
  saveCompaction(snapshot: Snapshot): void {
    this.snapshot = snapshot;
    this.entries = this.entries.filter((e) => e.index > snapshot.metadata.index);
  }

  state(): RaftStorageState {
    return { hardState: this.hardState, snapshot: this.snapshot, entries: [...this.entries] };
  }

  baseIndex(): number {
    return this.snapshot?.metadata.index ?? 0;
  }

  lastIndex(): number {
    return this.baseIndex() + this.entries.length;
  }

  entryAt(index: number): Entry | undefined {
    return this.entries[index - this.baseIndex() - 1];
  }

  allEntries(): readonly Entry[] {
    return this.entries;
  }

  commitIndex(): number {
    return this.hardState.commit;
  }
}
