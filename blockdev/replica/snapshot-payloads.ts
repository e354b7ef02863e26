import { Opcode, ReplicaProtocolError } from './replica-protocol.js';

/**
 * Payload of the snapshot ops of the replication protocol (issue 8, version
 * 3; replica-protocol.ts): which snapshot, and for CLONE the new volume.
 * Pure, like the rest of the codec.
 *
 * | bytes | field                                        |
 * | ----- | -------------------------------------------- |
 * | 1     | snapshot id length S (1-255)                 |
 * | S     | snapshot id, UTF-8 (the pool's id rule)      |
 * | 1     | CLONE only: new volume id length V (1-255)   |
 * | V     | CLONE only: new volume id, UTF-8             |
 *
 * The request's other fields: generation (fenced as usual), volume id (the
 * volume the snapshot belongs to), offset/length (SNAPSHOT_READ: the range;
 * CLONE: length = the clone's size in bytes, 0 = the snapshot's).
 */

export const SNAPSHOT_OPS: ReadonlySet<number> = new Set([Opcode.SNAPSHOT_CREATE, Opcode.SNAPSHOT_DELETE, Opcode.SNAPSHOT_READ, Opcode.REVERT, Opcode.CLONE]);

/** Same rule as the pool's snapshot ids (pool-types.ts): no '@', starts alphanumeric. */
const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,254}$/;
const MAX_ID_BYTES = 255;

export interface SnapshotReference {
  readonly snapshotId: string;
  /** CLONE only. */
  readonly newVolumeId?: string;
}

/** Throws (a caller bug) on ids the wire cannot carry. */
export function encodeSnapshotReference(reference: SnapshotReference): Buffer {
  const parts = [reference.snapshotId, ...(reference.newVolumeId === undefined ? [] : [reference.newVolumeId])].map((id) => {
    const bytes = Buffer.from(id, 'utf8');
    if (!ID_PATTERN.test(id) || bytes.length > MAX_ID_BYTES) throw new ReplicaProtocolError('BAD_STRING', `id ${JSON.stringify(id)} is not a valid snapshot or volume id`);
    return Buffer.concat([Buffer.from([bytes.length]), bytes]);
  });
  return Buffer.concat(parts);
}

export function decodeSnapshotReference(opcode: number, payload: Buffer): SnapshotReference | ReplicaProtocolError {
  const first = readId(payload, 0, 'snapshot id');
  if (first instanceof ReplicaProtocolError) return first;
  if (opcode !== Opcode.CLONE) {
    if (first.end !== payload.length) return new ReplicaProtocolError('BAD_LENGTH', `opcode ${opcode}: ${payload.length - first.end} bytes after the snapshot id`);
    return { snapshotId: first.id };
  }
  const second = readId(payload, first.end, 'new volume id');
  if (second instanceof ReplicaProtocolError) return second;
  if (second.end !== payload.length) return new ReplicaProtocolError('BAD_LENGTH', `CLONE: ${payload.length - second.end} bytes after the new volume id`);
  return { snapshotId: first.id, newVolumeId: second.id };
}

/** The codec's shape check for a snapshot op's payload. */
export function checkSnapshotPayload(opcode: number, payload: Buffer): ReplicaProtocolError | undefined {
  const decoded = decodeSnapshotReference(opcode, payload);
  return decoded instanceof ReplicaProtocolError ? decoded : undefined;
}

const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

function readId(payload: Buffer, at: number, field: string): { id: string; end: number } | ReplicaProtocolError {
  if (payload.length < at + 1) return new ReplicaProtocolError('TRUNCATED', `snapshot payload ends before its ${field}`);
  const length = payload.readUInt8(at);
  const end = at + 1 + length;
  if (length === 0 || payload.length < end) return new ReplicaProtocolError('TRUNCATED', `${field} of ${length} bytes does not fit the payload`);
  let id: string;
  try {
    id = utf8Decoder.decode(payload.subarray(at + 1, end));
  } catch {
    // The fatal decoder throws on invalid UTF-8; that is the refusal itself.
    return new ReplicaProtocolError('BAD_STRING', `${field} is not valid UTF-8`);
  }
  if (!ID_PATTERN.test(id)) return new ReplicaProtocolError('BAD_STRING', `${field} ${JSON.stringify(id)} breaks the id rule`);
  return { id, end };
}
