/**
 * Membership changes one server at a time (Raft thesis §4.1, paper §6).
 * A conf-change entry's data is the JSON of a ConfChange; the new
 * configuration takes effect on each server as soon as the entry is in its
 * log (thesis §4.1: "a server always uses the latest configuration in its
 * log, regardless of whether the entry is committed").
 */
import { PlinthError } from '../../common/plinth-error.js';
import type { ConfChange, ConfState, NodeId } from './types.js';

/** Bound on a conf-change entry so a corrupt one cannot allocate much. */
const MAX_CONF_CHANGE_BYTES = 64 * 1024;

export const EMPTY_CONF_STATE: ConfState = { voters: [], learners: [] };

export function encodeConfChange(change: ConfChange): Buffer {
  return Buffer.from(JSON.stringify(change), 'utf8');
}

export function decodeConfChange(data: Buffer): ConfChange {
  if (data.length > MAX_CONF_CHANGE_BYTES) {
    throw new PlinthError('INVALID_ARGUMENT', 'conf-change entry too large', { sizeBytes: data.length });
  }
  const parsed: unknown = JSON.parse(data.toString('utf8'));
  if (typeof parsed !== 'object' || parsed === null) {
    throw new PlinthError('INVALID_ARGUMENT', 'conf-change entry is not an object');
  }
  const record = parsed as Record<string, unknown>;
  const type = record['type'];
  if (type === 'bootstrap') {
    const voters = record['voters'];
    if (!Array.isArray(voters) || !voters.every((v): v is string => typeof v === 'string' && v !== '')) {
      throw new PlinthError('INVALID_ARGUMENT', 'bootstrap conf-change needs a list of voter ids');
    }
    return { type, voters };
  }
  const nodeId = record['nodeId'];
  if (typeof nodeId !== 'string' || nodeId === '') {
    throw new PlinthError('INVALID_ARGUMENT', 'conf-change needs a nodeId', { type });
  }
  if (type === 'add-learner' || type === 'promote-voter' || type === 'remove-node') {
    return { type, nodeId };
  }
  throw new PlinthError('INVALID_ARGUMENT', 'unknown conf-change type', { type });
}

export function isMember(conf: ConfState, id: NodeId): boolean {
  return conf.voters.includes(id) || conf.learners.includes(id);
}

export function isVoter(conf: ConfState, id: NodeId): boolean {
  return conf.voters.includes(id);
}

/**
 * Checks a change against the current configuration; returns a reason it is
 * invalid or null. Applying an invalid change from the log is a no-op, so every
 * server derives the same configuration from the same log.
 */
export function confChangeProblem(conf: ConfState, change: ConfChange): string | null {
  switch (change.type) {
    case 'bootstrap':
      return conf.voters.length === 0 && conf.learners.length === 0 && change.voters.length > 0
        ? null
        : 'bootstrap only applies to an empty configuration';
    case 'add-learner':
      return isMember(conf, change.nodeId) ? 'node is already a member' : null;
    case 'promote-voter':
      return conf.learners.includes(change.nodeId) ? null : 'only a learner can be promoted';
    case 'remove-node':
      if (!isMember(conf, change.nodeId)) return 'node is not a member';
      if (conf.voters.length === 1 && conf.voters[0] === change.nodeId) return 'cannot remove the last voter';
      return null;
  }
}

export function applyConfChange(conf: ConfState, change: ConfChange): ConfState {
  if (confChangeProblem(conf, change) !== null) return conf;
  switch (change.type) {
    case 'bootstrap':
      return { voters: [...change.voters], learners: [] };
    case 'add-learner':
      return { voters: conf.voters, learners: [...conf.learners, change.nodeId] };
    case 'promote-voter':
      return {
        voters: [...conf.voters, change.nodeId],
        learners: conf.learners.filter((id) => id !== change.nodeId),
      };
    case 'remove-node':
      return {
        voters: conf.voters.filter((id) => id !== change.nodeId),
        learners: conf.learners.filter((id) => id !== change.nodeId),
      };
  }
}
