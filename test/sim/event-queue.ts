/**
 * Virtual time: a binary min-heap of timed actions. Ties break by insertion
 * order, so a seed always replays the same interleaving.
 */
interface TimedAction {
  readonly atMs: number;
  readonly seq: number;
  readonly run: () => void;
}

export class EventQueue {
  private readonly heap: TimedAction[] = [];
  private seq = 0;
  nowMs = 0;
  /** Events run so far; the simulation bounds it so a livelock ends the seed instead of hanging it. */
  eventsRun = 0;

  constructor(private readonly maxEvents = Number.POSITIVE_INFINITY) {}

  budgetExhausted(): boolean {
    return this.eventsRun >= this.maxEvents;
  }

  schedule(delayMs: number, run: () => void): void {
    this.push({ atMs: this.nowMs + Math.max(0, delayMs), seq: this.seq++, run });
  }

  /** Runs actions until virtual time passes `untilMs` or `stop()` says so. */
  runUntil(untilMs: number, stop: () => boolean = () => false): void {
    while (this.heap.length > 0 && !stop() && !this.budgetExhausted()) {
      const next = this.heap[0];
      if (next === undefined || next.atMs > untilMs) break;
      this.pop();
      this.nowMs = next.atMs;
      this.eventsRun++;
      next.run();
    }
    if (!stop() && !this.budgetExhausted()) this.nowMs = Math.max(this.nowMs, untilMs);
  }

  size(): number {
    return this.heap.length;
  }

  private less(a: TimedAction, b: TimedAction): boolean {
    return a.atMs < b.atMs || (a.atMs === b.atMs && a.seq < b.seq);
  }

  private push(item: TimedAction): void {
    const heap = this.heap;
    heap.push(item);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent];
      if (p === undefined || !this.less(item, p)) break;
      heap[i] = p;
      i = parent;
    }
    heap[i] = item;
  }

  private pop(): void {
    const heap = this.heap;
    const last = heap.pop();
    if (last === undefined || heap.length === 0) return;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = last;
      let at = -1;
      const l = heap[left];
      const r = heap[right];
      if (l !== undefined && this.less(l, smallest)) {
        smallest = l;
        at = left;
      }
      if (r !== undefined && this.less(r, smallest)) {
        smallest = r;
        at = right;
      }
      if (at < 0) break;
      heap[i] = smallest;
      i = at;
    }
    heap[i] = last;
  }
}
