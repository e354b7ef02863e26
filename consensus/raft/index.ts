/**
 * Public surface of the pure Raft core. See types.ts for the Ready loop contract.
 */
export * from './types.js';
export { RaftCore, type RaftCoreOptions, type RaftCoreModules } from './raft-core.js';
export { bootstrapState, emptyState } from './storage-state.js';
export {
  encodeConfChange,
  decodeConfChange,
  applyConfChange,
  confChangeProblem,
  isVoter,
  isMember,
  EMPTY_CONF_STATE,
} from './conf-change.js';
export { entrySizeBytes } from './raft-log.js';
