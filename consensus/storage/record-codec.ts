/**
 * Pure codecs for the durable Raft records. Every record is
 *
 *   u32 CRC-32C of everything after it | u8 record version | body
 *
 * so a torn or bit-rotten record is detected on load (issue 3: "a CRC per
 * entry and per hard-state record, verified on load"). Numbers are u64 big
 * endian (as two u32: indices stay below 2^53, the JS safe-integer range).
 */
import { PlinthError } from '../../common/plinth-error.js';
import { decodeWire, encodeWire, wireNumber, wireOptionalObject } from '../proto/wire-fields.js';
import { metadataFromWire, metadataToWire } from '../proto/raft-message-codec.js';
import type { Entry, HardState, SnapshotMetadata } from '../raft/types.js';
import { crc32c } from './crc32c.js';
import { SnapshotRecordType } from './snapshot-record-schema.js';

const RECORD_VERSION = 1;
const HEADER_BYTES = 5;
const ENTRY_FIXED_BYTES = 8 + 8 + 1;
const MAX_VOTE_ID_BYTES = 1024;

/** A record whose checksum or shape does not verify. */
export class CorruptRecord {
  constructor(readonly reason: string) {}
}

export function sealRecord(body: Buffer): Buffer {
  const record = Buffer.allocUnsafe(HEADER_BYTES + body.length);
  record.writeUInt8(RECORD_VERSION, 4);
  body.copy(record, HEADER_BYTES);
  record.writeUInt32BE(crc32c(record.subarray(4)), 0);
  return record;
}

/** The body of a verified record, or CorruptRecord. */
export function openRecord(record: Buffer): Buffer | CorruptRecord {
  if (record.length < HEADER_BYTES) return new CorruptRecord(`record of ${record.length} bytes is shorter than its header`);
  if (crc32c(record.subarray(4)) !== record.readUInt32BE(0)) return new CorruptRecord('checksum mismatch');
  const version = record.readUInt8(4);
  if (version !== RECORD_VERSION) return new CorruptRecord(`unknown record version ${version}`);
  return record.subarray(HEADER_BYTES);
}

export function encodeEntryRecord(entry: Entry): Buffer {
  const body = Buffer.allocUnsafe(ENTRY_FIXED_BYTES + entry.data.length);
  writeU64(body, entry.index, 0);
  writeU64(body, entry.term, 8);
  body.writeUInt8(entry.type === 'conf-change' ? 1 : 0, 16);
  entry.data.copy(body, ENTRY_FIXED_BYTES);
  return sealRecord(body);
}

export function decodeEntryRecord(record: Buffer): Entry | CorruptRecord {
  const body = openRecord(record);
  if (body instanceof CorruptRecord) return body;
  if (body.length < ENTRY_FIXED_BYTES) return new CorruptRecord('entry record too short');
  const kind = body.readUInt8(16);
  if (kind > 1) return new CorruptRecord(`unknown entry kind ${kind}`);
  return {
    index: readU64(body, 0),
    term: readU64(body, 8),
    type: kind === 1 ? 'conf-change' : 'normal',
    // Copy: LevelDB may hand out a slice of a larger buffer.
    data: Buffer.from(body.subarray(ENTRY_FIXED_BYTES)),
  };
}

export function encodeHardStateRecord(hardState: HardState): Buffer {
  const vote = hardState.vote === null ? null : Buffer.from(hardState.vote, 'utf8');
  if (vote !== null && (vote.length === 0 || vote.length > MAX_VOTE_ID_BYTES)) {
    throw new PlinthError('INVALID_ARGUMENT', 'vote must be a non-empty node id of at most 1 KiB', { vote: hardState.vote });
  }
  const body = Buffer.alloc(8 + 8 + 2 + (vote?.length ?? 0));
  writeU64(body, hardState.term, 0);
  writeU64(body, hardState.commit, 8);
  body.writeUInt16BE(vote?.length ?? 0, 16);
  vote?.copy(body, 18);
  return sealRecord(body);
}

export function decodeHardStateRecord(record: Buffer): HardState | CorruptRecord {
  const body = openRecord(record);
  if (body instanceof CorruptRecord) return body;
  if (body.length < 18) return new CorruptRecord('hard-state record too short');
  const voteBytes = body.readUInt16BE(16);
  if (body.length !== 18 + voteBytes) return new CorruptRecord('hard-state record length mismatch');
  return {
    term: readU64(body, 0),
    commit: readU64(body, 8),
    vote: voteBytes === 0 ? null : body.toString('utf8', 18),
  };
}

/** Snapshot metadata plus the length and CRC of its data, verified separately. */
export interface SnapshotRecord {
  readonly metadata: SnapshotMetadata;
  readonly dataBytes: number;
  readonly dataCrc: number;
}

export function encodeSnapshotRecord(metadata: SnapshotMetadata, data: Buffer): Buffer {
  const wire = encodeWire(SnapshotRecordType, { metadata: metadataToWire(metadata), data_bytes: data.length, data_crc: crc32c(data) });
  return sealRecord(Buffer.from(wire.buffer, wire.byteOffset, wire.length));
}

export function decodeSnapshotRecord(record: Buffer): SnapshotRecord | CorruptRecord {
  const body = openRecord(record);
  if (body instanceof CorruptRecord) return body;
  try {
    const wire = decodeWire(SnapshotRecordType, body);
    const metadata = wireOptionalObject(wire, 'metadata');
    if (metadata === undefined) return new CorruptRecord('snapshot record without metadata');
    return { metadata: metadataFromWire(metadata), dataBytes: wireNumber(wire, 'data_bytes'), dataCrc: wireNumber(wire, 'data_crc') };
  } catch (err) {
    return new CorruptRecord(`undecodable snapshot record: ${String(err)}`);
  }
}

function writeU64(buffer: Buffer, value: number, offset: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new PlinthError('INVALID_ARGUMENT', `not a safe unsigned integer: ${value}`, { value });
  }
  buffer.writeUInt32BE(Math.floor(value / 0x1_0000_0000), offset);
  buffer.writeUInt32BE(value >>> 0, offset + 4);
}

function readU64(buffer: Buffer, offset: number): number {
  return buffer.readUInt32BE(offset) * 0x1_0000_0000 + buffer.readUInt32BE(offset + 4);
}
