/**
 * The session's command numbering (RFC 7143 §4.2.2.1): CmdSN, ExpCmdSN,
 * MaxCmdSN in serial number arithmetic (RFC 1982, 32 bits). Non-immediate
 * commands are accepted only inside [ExpCmdSN, MaxCmdSN]; anything outside
 * or a duplicate is silently ignored. Commands arriving ahead of a gap wait
 * (bounded by the window) and are released in CmdSN order. MaxCmdSN never
 * goes backwards and never lets more than `depth` commands be in flight.
 */

/** RFC 1982 serial comparison: a < b. */
export function serialLessThan(a: number, b: number): boolean {
  return a !== b && ((b - a) >>> 0) < 0x80000000;
}

export function serialAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}

export type Admission<T> =
  /** In order: run these now (the command and any queued ones it unblocked), in order. */
  | { readonly kind: 'run'; readonly ready: T[] }
  /** Ahead of a gap: held until the gap fills. */
  | { readonly kind: 'queued' }
  /** Outside the window or a duplicate: ignore it (§4.2.2.1). */
  | { readonly kind: 'ignored'; readonly reason: 'outside-window' | 'duplicate' };

export class CommandWindow<T> {
  private readonly depth: number;
  private expCmdSNValue: number;
  private maxCmdSNValue: number;
  private active = 0;
  private readonly waiting = new Map<number, T>();

  /** `initialCmdSN` is the CmdSN of the leading Login Request (§11.12.6). */
  constructor(options: { depth: number; initialCmdSN: number }) {
    this.depth = options.depth;
    this.expCmdSNValue = options.initialCmdSN >>> 0;
    this.maxCmdSNValue = serialAdd(this.expCmdSNValue, this.depth - 1);
  }

  expCmdSN(): number {
    return this.expCmdSNValue;
  }

  /** Recomputed on every call so every outgoing PDU carries the latest window. */
  maxCmdSN(): number {
    const candidate = serialAdd(this.expCmdSNValue, this.depth - this.active - this.waiting.size - 1);
    if (serialLessThan(this.maxCmdSNValue, candidate)) {
      this.maxCmdSNValue = candidate;
    }
    return this.maxCmdSNValue;
  }

  inFlight(): number {
    return this.active;
  }

  /**
   * The usual case without an item or a result object: true when `cmdSN`
   * is ExpCmdSN and no command waits behind a gap, and the command is then
   * admitted (run it now; end it with complete()). False: nothing changed,
   * call admit().
   */
  admitNext(cmdSN: number): boolean {
    if (cmdSN !== this.expCmdSNValue || this.waiting.size > 0) {
      return false;
    }
    this.expCmdSNValue = serialAdd(this.expCmdSNValue, 1);
    this.active += 1;
    return true;
  }

  /** A non-immediate command numbered `cmdSN`. Each one run must be ended with complete(). */
  admit(cmdSN: number, item: T): Admission<T> {
    if (serialLessThan(cmdSN, this.expCmdSNValue)) {
      return { kind: 'ignored', reason: 'duplicate' };
    }
    if (serialLessThan(this.maxCmdSNValue, cmdSN)) {
      return { kind: 'ignored', reason: 'outside-window' };
    }
    if (cmdSN !== this.expCmdSNValue) {
      if (this.waiting.has(cmdSN)) {
        return { kind: 'ignored', reason: 'duplicate' };
      }
      this.waiting.set(cmdSN, item);
      return { kind: 'queued' };
    }
    const ready: T[] = [item];
    this.expCmdSNValue = serialAdd(this.expCmdSNValue, 1);
    this.active += 1;
    for (;;) {
      const next = this.waiting.get(this.expCmdSNValue);
      if (next === undefined) break;
      this.waiting.delete(this.expCmdSNValue);
      ready.push(next);
      this.expCmdSNValue = serialAdd(this.expCmdSNValue, 1);
      this.active += 1;
    }
    return { kind: 'run', ready };
  }

  /** Immediate commands count against the depth while they run, but take no CmdSN (§3.2.2.1). */
  startImmediate(): boolean {
    if (this.active >= this.depth) {
      return false;
    }
    this.active += 1;
    return true;
  }

  complete(): void {
    if (this.active > 0) {
      this.active -= 1;
    }
  }
}
