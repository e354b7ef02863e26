/**
 * Raft's safety properties (Figure 3), checked as the simulation runs:
 *  - election safety: at most one leader per term;
 *  - log matching: same index and term → identical logs up to there;
 *  - leader completeness: a new leader holds every entry committed before;
 *  - state-machine safety: every server applies the same entry at an index.
 * Entries are known committed once any server applies them.
 */
import type { Entry, NodeId } from '../../consensus/raft/index.js';

export interface LogView {
  readonly id: NodeId;
  /** First index still in the log (after the snapshot). */
  readonly firstIndex: number;
  readonly lastIndex: number;
  entry(index: number): Entry | undefined;
}

function sameEntry(a: Entry, b: Entry): boolean {
  return a.term === b.term && a.type === b.type && a.data.equals(b.data);
}

export class SafetyChecker {
  readonly violations: string[] = [];
  private readonly leaderOfTerm = new Map<number, NodeId>();
  private readonly committed = new Map<number, Entry>();

  private fail(message: string): void {
    if (this.violations.length < 20) this.violations.push(message);
  }

  onLeader(id: NodeId, term: number, log: { term(index: number): number | undefined; firstIndex: number }, nowMs: number): void {
    const existing = this.leaderOfTerm.get(term);
    if (existing !== undefined && existing !== id) {
      this.fail(`election safety: ${existing} and ${id} both leaders of term ${term} (t=${nowMs.toFixed(1)}ms)`);
    }
    this.leaderOfTerm.set(term, id);
    for (const [index, entry] of this.committed) {
      if (index < log.firstIndex) continue;
      const term2 = log.term(index);
      if (term2 !== entry.term) {
        this.fail(
          `leader completeness: ${id} leader of term ${term} has term ${String(term2)} at committed index ${index} (committed term ${entry.term}, t=${nowMs.toFixed(1)}ms)`,
        );
        return;
      }
    }
  }

  onApply(id: NodeId, entry: Entry, nowMs: number): void {
    const known = this.committed.get(entry.index);
    if (known === undefined) {
      this.committed.set(entry.index, entry);
      return;
    }
    if (!sameEntry(known, entry)) {
      this.fail(
        `state-machine safety: ${id} applied term ${entry.term} at index ${entry.index}, another server applied term ${known.term} (t=${nowMs.toFixed(1)}ms)`,
      );
    }
  }

  /** Log matching over every pair of logs (§5.3 Log Matching Property). */
  checkLogMatching(logs: readonly LogView[]): void {
    for (let i = 0; i < logs.length; i++) {
      for (let j = i + 1; j < logs.length; j++) {
        const a = logs[i];
        const b = logs[j];
        if (a !== undefined && b !== undefined) this.checkPair(a, b);
      }
    }
  }

  private checkPair(a: LogView, b: LogView): void {
    const low = Math.max(a.firstIndex, b.firstIndex);
    const high = Math.min(a.lastIndex, b.lastIndex);
    let matchedUpTo = -1;
    for (let index = high; index >= low; index--) {
      const ea = a.entry(index);
      const eb = b.entry(index);
      if (ea !== undefined && eb !== undefined && ea.term === eb.term) {
        matchedUpTo = index;
        break;
      }
    }
    for (let index = low; index <= matchedUpTo; index++) {
      const ea = a.entry(index);
      const eb = b.entry(index);
      if (ea === undefined || eb === undefined || !sameEntry(ea, eb)) {
        this.fail(`log matching: ${a.id} and ${b.id} agree at index ${matchedUpTo} but differ at ${index}`);
        return;
      }
    }
  }

  committedCount(): number {
    return this.committed.size;
  }
}
