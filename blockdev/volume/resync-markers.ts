/**
 * Which dirty marker of each in-sync replica predates every write a failing
 * replica missed (issue 4 "Delta resync" across an owner change). Pure
 * bookkeeping; the controller fetches markers (marker-refresh.ts) and calls
 * in here.
 *
 * A marker M of replica S (blockdev/replica/region-tracker.ts) makes S
 * report every region written on S after M was handed out. When replica F
 * leaves the in-sync set, the committed replica.fault records, for each
 * in-sync S, a marker handed out before S received the FIRST write F
 * missed. A later rebuilder (another owner, or this one after a restart)
 * then copies only "changed on S since M" onto F. A marker that is too new
 * loses writes (data loss); one that is too old only copies more.
 *
 * The rule: every mutation gets a dispatch number when it is sent. A marker
 * whose answer arrived when the next number was N predates (on S) every
 * mutation numbered N or later, since those were sent after the answer
 * came back. F has acknowledged every mutation that settled before it
 * failed (it would have failed earlier otherwise); the writes it may have
 * missed are the ones still unsettled when it fails, and later ones. So the
 * safe marker is the newest one with N <= the lowest unsettled number (or
 * the next number when nothing is in flight).
 */

interface MarkerEntry {
  readonly markerSeq: number;
  /** Safe for every mutation numbered this or higher. */
  readonly coversFromDispatch: number;
}

export class ResyncMarkers {
  readonly #maxPerReplica: number;
  #nextDispatch = 1;
  readonly #unsettled = new Set<number>();
  /** Per replica, oldest first. */
  readonly #markers = new Map<string, MarkerEntry[]>();

  constructor(maxPerReplica = 8) {
    this.#maxPerReplica = Math.max(1, maxPerReplica);
  }

  /** A mutation is about to be sent to the replicas; pass the number to `settled` once every replica answered. */
  dispatch(): number {
    const number = this.#nextDispatch;
    this.#nextDispatch += 1;
    this.#unsettled.add(number);
    return number;
  }

  settled(number: number): void {
    this.#unsettled.delete(number);
  }

  /**
   * Replica `replicaId` answered `markerSeq` just now: it predates every
   * mutation dispatched from now on. Markers of a replica only grow; a
   * smaller one means its tracking restarted, so the older ones are void.
   */
  record(replicaId: string, markerSeq: number): void {
    const entry: MarkerEntry = { markerSeq, coversFromDispatch: this.#nextDispatch };
    const list = this.#markers.get(replicaId) ?? [];
    const last = list[list.length - 1];
    if (last !== undefined && markerSeq < last.markerSeq) list.length = 0;
    this.#prune(list);
    // When full, dropping the newest is the safe choice: an older marker only copies more.
    if (list.length < this.#maxPerReplica) list.push(entry);
    this.#prune(list);
    this.#markers.set(replicaId, list);
  }

  /** The replica left the in-sync set: its markers are not offered any more. */
  forget(replicaId: string): void {
    this.#markers.delete(replicaId);
  }

  /** For a replica failing now: the safe marker of each of `sources` that has one. */
  markersBefore(sources: Iterable<string>): Record<string, number> {
    const horizon = this.#horizon();
    const chosen: Record<string, number> = {};
    for (const source of sources) {
      const list = this.#markers.get(source);
      if (list === undefined) continue;
      const safe = newestCovering(list, horizon);
      if (safe !== undefined) chosen[source] = safe.markerSeq;
    }
    return chosen;
  }

  /** Markers held for a replica (tests, diagnostics). */
  markerCount(replicaId: string): number {
    return this.#markers.get(replicaId)?.length ?? 0;
  }

  /** The lowest number whose mutation may not have reached every replica. */
  #horizon(): number {
    let lowest = this.#nextDispatch;
    for (const number of this.#unsettled) lowest = Math.min(lowest, number);
    return lowest;
  }

  /** Entries older than the newest one usable now are never needed again: the horizon only grows. */
  #prune(list: MarkerEntry[]): void {
    const horizon = this.#horizon();
    let newestUsable = -1;
    list.forEach((entry, index) => {
      if (entry.coversFromDispatch <= horizon) newestUsable = index;
    });
    if (newestUsable > 0) list.splice(0, newestUsable);
  }
}

function newestCovering(list: readonly MarkerEntry[], horizon: number): MarkerEntry | undefined {
  let found: MarkerEntry | undefined;
  for (const entry of list) if (entry.coversFromDispatch <= horizon) found = entry;
  return found;
}
