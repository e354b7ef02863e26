/**
 * Raft Message ↔ protobuf bytes. Decoding validates every field the variant
 * needs, so a malformed message becomes BAD_FRAME at the transport edge (and
 * costs only that connection) instead of a crash inside the core.
 */
import { PlinthError } from '../../common/plinth-error.js';
import type { ConfState, Entry, Message, MessageType, SnapshotMetadata } from '../raft/types.js';
import type { MessageCodec } from '../transport/transport-types.js';
import {
  decodeWire,
  encodeWire,
  wireArray,
  wireBoolean,
  wireBytes,
  wireNumber,
  wireOptionalObject,
  wireString,
  type WireObject,
} from './wire-fields.js';
import { RaftMessageType } from './wire-schema.js';

const KIND_BY_TYPE: Readonly<Record<MessageType, number>> = {
  vote: 1,
  'pre-vote': 2,
  'vote-response': 3,
  'pre-vote-response': 4,
  append: 5,
  'append-response': 6,
  heartbeat: 7,
  'heartbeat-response': 8,
  'snapshot-chunk': 9,
  'snapshot-chunk-response': 10,
  'timeout-now': 11,
};
const TYPE_BY_KIND = new Map<number, MessageType>(
  Object.entries(KIND_BY_TYPE).map(([type, kind]) => [kind, type as MessageType]),
);

export function encodeRaftMessage(message: Message): Uint8Array {
  const wire: Record<string, unknown> = {
    kind: KIND_BY_TYPE[message.type],
    from: message.from,
    to: message.to,
    term: message.term,
  };
  switch (message.type) {
    case 'vote':
    case 'pre-vote':
      Object.assign(wire, { last_log_index: message.lastLogIndex, last_log_term: message.lastLogTerm, leadership_transfer: message.leadershipTransfer });
      break;
    case 'vote-response':
    case 'pre-vote-response':
      wire['reject'] = message.reject;
      break;
    case 'append':
      Object.assign(wire, {
        prev_log_index: message.prevLogIndex,
        prev_log_term: message.prevLogTerm,
        entries: message.entries.map(entryToWire),
        commit: message.commit,
      });
      break;
    case 'append-response':
      Object.assign(wire, { reject: message.reject, index: message.index, reject_hint_index: message.rejectHintIndex, reject_hint_term: message.rejectHintTerm });
      break;
    case 'heartbeat':
      Object.assign(wire, { commit: message.commit, has_context: message.context !== null, context: message.context ?? Buffer.alloc(0) });
      break;
    case 'heartbeat-response':
      Object.assign(wire, { has_context: message.context !== null, context: message.context ?? Buffer.alloc(0) });
      break;
    case 'snapshot-chunk':
      Object.assign(wire, {
        metadata: metadataToWire(message.metadata),
        total_bytes: message.totalBytes,
        offset: message.offset,
        data: message.data,
        done: message.done,
      });
      break;
    case 'snapshot-chunk-response':
      Object.assign(wire, { snapshot_index: message.snapshotIndex, next_offset: message.nextOffset, reject: message.reject });
      break;
    case 'timeout-now':
      break;
  }
  return encodeWire(RaftMessageType, wire);
}

export function decodeRaftMessage(payload: Uint8Array): Message {
  const wire = decodeWire(RaftMessageType, payload);
  const type = TYPE_BY_KIND.get(wireNumber(wire, 'kind'));
  if (type === undefined) throw new PlinthError('BAD_FRAME', 'unknown raft message kind', { kind: wire['kind'] });
  const base = { from: nonEmpty(wire, 'from'), to: nonEmpty(wire, 'to'), term: wireNumber(wire, 'term') };
  switch (type) {
    case 'vote':
    case 'pre-vote':
      return {
        ...base,
        type,
        lastLogIndex: wireNumber(wire, 'last_log_index'),
        lastLogTerm: wireNumber(wire, 'last_log_term'),
        leadershipTransfer: wireBoolean(wire, 'leadership_transfer'),
      };
    case 'vote-response':
    case 'pre-vote-response':
      return { ...base, type, reject: wireBoolean(wire, 'reject') };
    case 'append':
      return {
        ...base,
        type,
        prevLogIndex: wireNumber(wire, 'prev_log_index'),
        prevLogTerm: wireNumber(wire, 'prev_log_term'),
        entries: wireArray(wire, 'entries').map(entryFromWire),
        commit: wireNumber(wire, 'commit'),
      };
    case 'append-response':
      return {
        ...base,
        type,
        reject: wireBoolean(wire, 'reject'),
        index: wireNumber(wire, 'index'),
        rejectHintIndex: wireNumber(wire, 'reject_hint_index'),
        rejectHintTerm: wireNumber(wire, 'reject_hint_term'),
      };
    case 'heartbeat':
      return { ...base, type, commit: wireNumber(wire, 'commit'), context: contextFromWire(wire) };
    case 'heartbeat-response':
      return { ...base, type, context: contextFromWire(wire) };
    case 'snapshot-chunk':
      return decodeSnapshotChunk(wire, base);
    case 'snapshot-chunk-response':
      return {
        ...base,
        type,
        snapshotIndex: wireNumber(wire, 'snapshot_index'),
        nextOffset: wireNumber(wire, 'next_offset'),
        reject: wireBoolean(wire, 'reject'),
      };
    case 'timeout-now':
      return { ...base, type };
  }
}

export const raftMessageCodec: MessageCodec<Message> = {
  encode: encodeRaftMessage,
  decode: decodeRaftMessage,
};

function decodeSnapshotChunk(wire: WireObject, base: { from: string; to: string; term: number }): Message {
  const metadata = wireOptionalObject(wire, 'metadata');
  if (metadata === undefined) throw new PlinthError('BAD_FRAME', 'snapshot chunk without metadata');
  return {
    ...base,
    type: 'snapshot-chunk',
    metadata: metadataFromWire(metadata),
    totalBytes: wireNumber(wire, 'total_bytes'),
    offset: wireNumber(wire, 'offset'),
    data: wireBytes(wire, 'data'),
    done: wireBoolean(wire, 'done'),
  };
}

function entryToWire(entry: Entry): Record<string, unknown> {
  return { index: entry.index, term: entry.term, kind: entry.type === 'conf-change' ? 1 : 0, data: entry.data };
}

function entryFromWire(value: unknown): Entry {
  if (typeof value !== 'object' || value === null) throw new PlinthError('BAD_FRAME', 'entry is not a message');
  const wire = value as WireObject;
  const kind = wireNumber(wire, 'kind');
  if (kind > 1) throw new PlinthError('BAD_FRAME', 'unknown entry kind', { kind });
  return { index: wireNumber(wire, 'index'), term: wireNumber(wire, 'term'), type: kind === 1 ? 'conf-change' : 'normal', data: wireBytes(wire, 'data') };
}

export function metadataToWire(metadata: SnapshotMetadata): Record<string, unknown> {
  return {
    index: metadata.index,
    term: metadata.term,
    conf_state: { voters: [...metadata.confState.voters], learners: [...metadata.confState.learners] },
  };
}

export function metadataFromWire(wire: WireObject): SnapshotMetadata {
  const conf = wireOptionalObject(wire, 'conf_state');
  const confState: ConfState =
    conf === undefined ? { voters: [], learners: [] } : { voters: stringList(conf, 'voters'), learners: stringList(conf, 'learners') };
  return { index: wireNumber(wire, 'index'), term: wireNumber(wire, 'term'), confState };
}

function stringList(wire: WireObject, field: string): string[] {
  return wireArray(wire, field).map((value) => {
    if (typeof value !== 'string' || value === '') throw new PlinthError('BAD_FRAME', `${field} holds a non-string id`);
    return value;
  });
}

function contextFromWire(wire: WireObject): Buffer | null {
  return wireBoolean(wire, 'has_context') ? wireBytes(wire, 'context') : null;
}

function nonEmpty(wire: WireObject, field: string): string {
  const value = wireString(wire, field);
  if (value === '') throw new PlinthError('BAD_FRAME', `raft message without ${field}`);
  return value;
}
