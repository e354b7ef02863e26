/**
 * The Raft peer-port wire schema, built at run time with protobufjs from the
 * proto3 text below (no codegen step, no .proto file to ship next to dist/).
 * Field numbers are the compatibility contract: only ever add fields.
 */
import protobuf from 'protobufjs';

export const RAFT_WIRE_PROTO = `
syntax = "proto3";
package plinth.raft;

// Handshake, see consensus/transport/handshake.ts.
message Hello {
  string node_id = 1;
  bytes nonce = 2;
}
message Challenge {
  string node_id = 1;
  bytes nonce = 2;
  bytes proof = 3;
}
message Proof {
  bytes proof = 1;
}

// Raft messages: one flat message for every variant of the Message union in
// consensus/raft/types.ts; "kind" selects which fields are meaningful.
message Entry {
  uint64 index = 1;
  uint64 term = 2;
  EntryKind kind = 3;
  bytes data = 4;
}
enum EntryKind {
  ENTRY_NORMAL = 0;
  ENTRY_CONF_CHANGE = 1;
}
message ConfState {
  repeated string voters = 1;
  repeated string learners = 2;
}
message SnapshotMetadata {
  uint64 index = 1;
  uint64 term = 2;
  ConfState conf_state = 3;
}
enum MessageKind {
  UNKNOWN = 0;
  VOTE = 1;
  PRE_VOTE = 2;
  VOTE_RESPONSE = 3;
  PRE_VOTE_RESPONSE = 4;
  APPEND = 5;
  APPEND_RESPONSE = 6;
  HEARTBEAT = 7;
  HEARTBEAT_RESPONSE = 8;
  SNAPSHOT_CHUNK = 9;
  SNAPSHOT_CHUNK_RESPONSE = 10;
  TIMEOUT_NOW = 11;
}
message RaftMessage {
  MessageKind kind = 1;
  string from = 2;
  string to = 3;
  uint64 term = 4;
  // vote, pre-vote
  uint64 last_log_index = 5;
  uint64 last_log_term = 6;
  bool leadership_transfer = 7;
  // *-response
  bool reject = 8;
  // append
  uint64 prev_log_index = 9;
  uint64 prev_log_term = 10;
  repeated Entry entries = 11;
  uint64 commit = 12;
  // append-response
  uint64 index = 13;
  uint64 reject_hint_index = 14;
  uint64 reject_hint_term = 15;
  // heartbeat, heartbeat-response: proto3 bytes cannot tell null from empty
  bool has_context = 16;
  bytes context = 17;
  // snapshot-chunk
  SnapshotMetadata metadata = 18;
  uint64 total_bytes = 19;
  uint64 offset = 20;
  bytes data = 21;
  bool done = 22;
  // snapshot-chunk-response
  uint64 snapshot_index = 23;
  uint64 next_offset = 24;
}
`;

const root = protobuf.parse(RAFT_WIRE_PROTO, { keepCase: true }).root;

export const HelloType = root.lookupType('plinth.raft.Hello');
export const ChallengeType = root.lookupType('plinth.raft.Challenge');
export const ProofType = root.lookupType('plinth.raft.Proof');
export const RaftMessageType = root.lookupType('plinth.raft.RaftMessage');
