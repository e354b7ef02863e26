import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * The request id of the control operation the current code runs on behalf
 * of (docs/operations.md "Finding one operation in the logs"). It is entered
 * where an operation starts on a node — the REST handler (api/request-id.ts),
 * the leader serving a forwarded proposal, the apply of a Raft entry that
 * carries an id — and read where the id must travel on (a forwarded
 * proposal, a Raft entry) and by the logger's mixin, so every line logged on
 * the operation's behalf carries `requestId`.
 *
 * Two bounds keep this cheap and honest:
 * - AsyncLocalStorage follows every continuation, also timers and loops
 *   that outlive the operation (a volume session opened by an attach). So a
 *   scope is active only until `end()` (the response is sent) or
 *   `maxActiveMs`, whichever is first; later lines go without the id rather
 *   than with a stale one.
 * - On Node 20 an enabled AsyncLocalStorage installs promise hooks that
 *   slow every promise in the process (measured: 2.5x on an await-heavy
 *   loop), the NBD and iSCSI data paths included. So the storage is enabled
 *   only while at least one scope is active and disabled when the last one
 *   ends: between control operations the data path runs without hooks.
 */
export const REQUEST_ID_LOG_KEY = 'requestId';

/** Follow-on effects of an applied entry (its listeners' work) are tagged this long at most. */
export const FOLLOW_ON_MAX_ACTIVE_MS = 2_000;

interface RequestScope {
  readonly requestId: string;
  active: boolean;
}

const storage = new AsyncLocalStorage<RequestScope | null>();
let activeScopes = 0;

export interface RequestScopeHandle {
  /** Stop tagging work with this id (the operation finished); idempotent. */
  end(): void;
}

const NO_SCOPE: RequestScopeHandle = { end: () => undefined };

/**
 * Run `fn` with `requestId` as the current id until `handle.end()` or
 * `maxActiveMs`; null runs it explicitly outside any operation.
 */
export function runWithRequestId<T>(requestId: string | null, fn: (handle: RequestScopeHandle) => T, maxActiveMs: number): T {
  if (requestId === null) return outsideRequestScope(() => fn(NO_SCOPE));
  const scope: RequestScope = { requestId, active: true };
  activeScopes += 1;
  // Created outside storage.run, so the timer itself carries no scope.
  const timer = setTimeout(() => handle.end(), maxActiveMs);
  timer.unref();
  const handle: RequestScopeHandle = {
    end: () => {
      if (!scope.active) return;
      scope.active = false;
      clearTimeout(timer);
      activeScopes -= 1;
      if (activeScopes === 0) storage.disable();
    },
  };
  return storage.run(scope, () => fn(handle));
}

/** The current operation's id, if its scope is still active. */
export function currentRequestId(): string | undefined {
  const scope = storage.getStore();
  return scope === undefined || scope === null || !scope.active ? undefined : scope.requestId;
}

/**
 * Run `fn` outside any operation: for calls into long-lived machinery (the
 * Raft node's loop) that must not inherit the caller's id. Awaiting the
 * result resumes in the caller's scope.
 */
export function outsideRequestScope<T>(fn: () => T): T {
  return activeScopes === 0 ? fn() : storage.run(null, fn);
}

/** Scopes active now (tests: none may be left behind). */
export function activeRequestScopes(): number {
  return activeScopes;
}
