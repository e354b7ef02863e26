/**
 * The configuration history of the log (thesis §4.1): the configuration in
 * force is the one of the latest conf-change entry in the log, committed or
 * not, so truncating the log can roll the configuration back. We keep one
 * checkpoint per conf-change entry since the snapshot.
 */
import { PlinthError } from '../../common/plinth-error.js';
import { applyConfChange, decodeConfChange, EMPTY_CONF_STATE } from './conf-change.js';
import type { ConfState, Entry } from './types.js';

interface ConfCheckpoint {
  readonly index: number;
  readonly conf: ConfState;
}

export class Membership {
  private checkpoints: ConfCheckpoint[];

  constructor(baseIndex: number, baseConf: ConfState = EMPTY_CONF_STATE) {
    this.checkpoints = [{ index: baseIndex, conf: baseConf }];
  }

  current(): ConfState {
    return this.last().conf;
  }

  /** Index of the latest conf-change entry (or of the snapshot base). */
  lastChangeIndex(): number {
    return this.last().index;
  }

  /** The configuration in force at `index` (used for snapshot metadata). */
  at(index: number): ConfState {
    let found = this.checkpoints[0] ?? { index: 0, conf: EMPTY_CONF_STATE };
    for (const checkpoint of this.checkpoints) {
      if (checkpoint.index <= index) found = checkpoint;
    }
    return found.conf;
  }

  /** Records conf-change entries just appended; returns whether the configuration changed. */
  appended(entries: readonly Entry[]): boolean {
    let changed = false;
    for (const entry of entries) {
      if (entry.type !== 'conf-change') continue;
      const conf = applyConfChange(this.current(), decodeConfChange(entry.data));
      this.checkpoints.push({ index: entry.index, conf });
      changed = true;
    }
    return changed;
  }

  /** The log lost entries >= index; returns whether the configuration rolled back. */
  truncateFrom(index: number): boolean {
    const before = this.checkpoints.length;
    this.checkpoints = this.checkpoints.filter((c, i) => i === 0 || c.index < index);
    return this.checkpoints.length !== before;
  }

  compactTo(index: number): void {
    const base = { index, conf: this.at(index) };
    this.checkpoints = [base, ...this.checkpoints.filter((c) => c.index > index)];
  }

  reset(index: number, conf: ConfState): void {
    this.checkpoints = [{ index, conf }];
  }

  private last(): ConfCheckpoint {
    const last = this.checkpoints[this.checkpoints.length - 1];
    if (last === undefined) throw new PlinthError('INTERNAL', 'membership has no checkpoint');
    return last;
  }
}
