/**
 * Linearizability checker for single-key register histories: the Wing–Gong
 * search with Lowe's memoisation, as in Porcupine (Athalye). Each key is
 * checked independently (P-compositionality). Operations whose outcome is
 * unknown (the client timed out on a write) return at +Infinity: they may
 * take effect at any point after their invocation, or never (equivalent to
 * "last", since nothing after them observes the difference).
 */

export type HistoryOp =
  | { readonly kind: 'put'; readonly value: string; readonly output: 'ok' | null } & OpTiming
  | { readonly kind: 'get'; readonly output: { readonly value: string | null } } & OpTiming
  | { readonly kind: 'cas'; readonly expected: string | null; readonly value: string; readonly output: { readonly ok: boolean } | null } & OpTiming;

interface OpTiming {
  readonly key: string;
  readonly clientId: number;
  readonly invokeMs: number;
  /** +Infinity for an ambiguous outcome. */
  readonly returnMs: number;
}

type RegisterState = string | null;

function step(state: RegisterState, op: HistoryOp): { ok: boolean; next: RegisterState } {
  switch (op.kind) {
    case 'put':
      return { ok: true, next: op.value };
    case 'get':
      return { ok: op.output.value === state, next: state };
    case 'cas': {
      const swapped = state === op.expected;
      const ok = op.output === null || op.output.ok === swapped;
      return { ok, next: swapped ? op.value : state };
    }
  }
}

interface EventNode {
  readonly opIndex: number;
  readonly isCall: boolean;
  readonly timeMs: number;
  prev: EventNode | null;
  next: EventNode | null;
  match: EventNode | null;
}

export type CheckOutcome = 'ok' | 'violation' | 'inconclusive';

/** Checks one key's history; `maxSteps` bounds the search (NP-complete in general). */
export function checkRegisterHistory(ops: readonly HistoryOp[], maxSteps = 200_000): CheckOutcome {
  const head = buildEventList(ops);
  const linearized: boolean[] = ops.map(() => false);
  const cache = new Map<string, Set<RegisterState>>();
  const stack: Array<{ call: EventNode; state: RegisterState }> = [];
  let state: RegisterState = null;
  let entry = head.next;
  let steps = 0;
  while (head.next !== null) {
    if (++steps > maxSteps) return 'inconclusive';
    if (entry === null) return 'violation';
    if (entry.isCall) {
      const op = ops[entry.opIndex];
      if (op === undefined) return 'violation';
      const result = step(state, op);
      if (result.ok) {
        linearized[entry.opIndex] = true;
        const key = linearized.map((b) => (b ? '1' : '0')).join('');
        const seen = cache.get(key) ?? new Set<RegisterState>();
        if (!seen.has(result.next)) {
          seen.add(result.next);
          cache.set(key, seen);
          stack.push({ call: entry, state });
          state = result.next;
          lift(entry);
          entry = head.next;
          continue;
        }
        linearized[entry.opIndex] = false;
      }
      entry = entry.next;
    } else {
      // Reached a return whose call is not linearized: backtrack.
      const top = stack.pop();
      if (top === undefined) return 'violation';
      state = top.state;
      linearized[top.call.opIndex] = false;
      unlift(top.call);
      entry = top.call.next;
    }
  }
  return 'ok';
}

function buildEventList(ops: readonly HistoryOp[]): EventNode {
  const events: EventNode[] = [];
  ops.forEach((op, opIndex) => {
    const call: EventNode = { opIndex, isCall: true, timeMs: op.invokeMs, prev: null, next: null, match: null };
    const ret: EventNode = { opIndex, isCall: false, timeMs: op.returnMs, prev: null, next: null, match: null };
    call.match = ret;
    events.push(call, ret);
  });
  // Calls sort before returns at the same instant: touching operations count as concurrent.
  events.sort((a, b) => a.timeMs - b.timeMs || (a.isCall === b.isCall ? a.opIndex - b.opIndex : a.isCall ? -1 : 1));
  const head: EventNode = { opIndex: -1, isCall: false, timeMs: -Infinity, prev: null, next: null, match: null };
  let last = head;
  for (const event of events) {
    last.next = event;
    event.prev = last;
    last = event;
  }
  return head;
}

/** Removes a call and its return from the list (the operation is linearized). */
function lift(call: EventNode): void {
  unlink(call);
  if (call.match !== null) unlink(call.match);
}

function unlink(node: EventNode): void {
  if (node.prev !== null) node.prev.next = node.next;
  if (node.next !== null) node.next.prev = node.prev;
}

/** Puts a call and its return back, in reverse order of lift. */
function unlift(call: EventNode): void {
  const ret = call.match;
  if (ret !== null) relink(ret);
  relink(call);
}

function relink(node: EventNode): void {
  if (node.prev !== null) node.prev.next = node;
  if (node.next !== null) node.next.prev = node;
}

/** Checks a whole multi-key history; returns the first bad key, or null. */
export function checkKvHistory(ops: readonly HistoryOp[]): { key: string; outcome: CheckOutcome } | null {
  const byKey = new Map<string, HistoryOp[]>();
  for (const op of ops) {
    const list = byKey.get(op.key) ?? [];
    list.push(op);
    byKey.set(op.key, list);
  }
  let inconclusive: { key: string; outcome: CheckOutcome } | null = null;
  for (const [key, list] of [...byKey].sort(([a], [b]) => a.localeCompare(b))) {
    const outcome = checkRegisterHistory(list);
    if (outcome === 'violation') return { key, outcome };
    if (outcome === 'inconclusive') inconclusive = { key, outcome };
  }
  return inconclusive;
}
