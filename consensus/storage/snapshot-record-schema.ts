/**
 * Protobuf shape of the stored snapshot record: it reuses the wire
 * SnapshotMetadata so stored and transmitted metadata cannot drift apart.
 */
import protobuf from 'protobufjs';
import { RAFT_WIRE_PROTO } from '../proto/wire-schema.js';

const STORAGE_PROTO = `
syntax = "proto3";
package plinth.raft.storage;
import "wire.proto";
message SnapshotRecord {
  plinth.raft.SnapshotMetadata metadata = 1;
  uint64 data_bytes = 2;
  uint32 data_crc = 3;
}
`;

const root = new protobuf.Root();
protobuf.parse(RAFT_WIRE_PROTO, root, { keepCase: true });
protobuf.parse(STORAGE_PROTO.replace('import "wire.proto";', ''), root, { keepCase: true });

export const SnapshotRecordType = root.lookupType('plinth.raft.storage.SnapshotRecord');
