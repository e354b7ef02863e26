/**
 * Initial storage states: a brand-new cluster and a node that will join one.
 */
import { encodeConfChange } from './conf-change.js';
import type { NodeId, RaftStorageState } from './types.js';

/**
 * A new cluster: every initial member starts with the same committed entry 1
 * (term 1) holding the bootstrap configuration, so a later joiner learns the
 * membership by replicating the log from the start (like etcd's bootstrap).
 */
export function bootstrapState(voters: readonly NodeId[]): RaftStorageState {
  return {
    hardState: { term: 1, vote: null, commit: 1 },
    snapshot: null,
    entries: [{ index: 1, term: 1, type: 'conf-change', data: encodeConfChange({ type: 'bootstrap', voters }) }],
  };
}

/** A node joining an existing cluster: no log, no members; it waits for the leader. */
export function emptyState(): RaftStorageState {
  return { hardState: { term: 0, vote: null, commit: 0 }, snapshot: null, entries: [] };
}
