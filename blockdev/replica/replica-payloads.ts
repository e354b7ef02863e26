import type { ExtentStatus } from '../block-device.js';
import { HANDSHAKE_NONCE_BYTES } from '../../consensus/transport/handshake.js';
import { ReplicaProtocolError } from './replica-protocol.js';

/**
 * Pure codecs of the op-specific payloads inside request and reply frames:
 * the HELLO handshake, OPEN's answer, BLOCK_STATUS runs and region lists
 * (GET_DIRTY, GET_ACTIVITY). Decoders return ReplicaProtocolError on bad input.
 */

export const PROOF_BYTES = 32;
export const MAX_NODE_ID_BYTES = 255;
/** BLOCK_STATUS runs per reply; the device may answer with fewer than asked (NBD allows it). */
export const MAX_STATUS_RUNS = 65536;
/** Regions per GET_DIRTY / GET_ACTIVITY reply; callers page through larger volumes by byte range. */
export const MAX_REGIONS_PER_REPLY = 262144;

const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

function decodeNodeId(bytes: Buffer): string | ReplicaProtocolError {
  if (bytes.length === 0 || bytes.length > MAX_NODE_ID_BYTES) {
    return new ReplicaProtocolError('BAD_STRING', `node id of ${bytes.length} bytes is out of bounds`);
  }
  try {
    return utf8Decoder.decode(bytes);
  } catch {
    // Invalid UTF-8 is the refusal itself; the caller drops the connection and logs it.
    return new ReplicaProtocolError('BAD_STRING', 'node id is not valid UTF-8');
  }
}

/** HELLO step 1 (dialer → acceptor): the dialer's nonce and node id. */
export interface HelloGreeting {
  readonly nodeId: string;
  readonly nonce: Buffer;
}

export function encodeHelloGreeting(greeting: HelloGreeting): Buffer {
  return Buffer.concat([greeting.nonce, Buffer.from(greeting.nodeId, 'utf8')]);
}

export function decodeHelloGreeting(payload: Buffer): HelloGreeting | ReplicaProtocolError {
  if (payload.length <= HANDSHAKE_NONCE_BYTES) return new ReplicaProtocolError('BAD_LENGTH', 'HELLO greeting is too short');
  const nodeId = decodeNodeId(payload.subarray(HANDSHAKE_NONCE_BYTES));
  if (nodeId instanceof ReplicaProtocolError) return nodeId;
  return { nodeId, nonce: Buffer.from(payload.subarray(0, HANDSHAKE_NONCE_BYTES)) };
}

/** HELLO step 1 reply (acceptor → dialer): its nonce, its proof and node id. */
export interface HelloChallenge {
  readonly nodeId: string;
  readonly nonce: Buffer;
  readonly proof: Buffer;
}

export function encodeHelloChallenge(challenge: HelloChallenge): Buffer {
  return Buffer.concat([challenge.nonce, challenge.proof, Buffer.from(challenge.nodeId, 'utf8')]);
}

export function decodeHelloChallenge(payload: Buffer): HelloChallenge | ReplicaProtocolError {
  const fixedBytes = HANDSHAKE_NONCE_BYTES + PROOF_BYTES;
  if (payload.length <= fixedBytes) return new ReplicaProtocolError('BAD_LENGTH', 'HELLO challenge is too short');
  const nodeId = decodeNodeId(payload.subarray(fixedBytes));
  if (nodeId instanceof ReplicaProtocolError) return nodeId;
  return {
    nodeId,
    nonce: Buffer.from(payload.subarray(0, HANDSHAKE_NONCE_BYTES)),
    proof: Buffer.from(payload.subarray(HANDSHAKE_NONCE_BYTES, fixedBytes)),
  };
}

/** OPEN reply: the volume's size on this replica. */
export function encodeOpenAnswer(sizeBytes: number): Buffer {
  const payload = Buffer.alloc(8);
  payload.writeBigUInt64BE(BigInt(sizeBytes));
  return payload;
}

export function decodeOpenAnswer(payload: Buffer): number | ReplicaProtocolError {
  if (payload.length !== 8) return new ReplicaProtocolError('BAD_LENGTH', `OPEN answer of ${payload.length} bytes`);
  const value = payload.readBigUInt64BE(0);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) return new ReplicaProtocolError('BAD_NUMBER', 'volume size above 2^53');
  return Number(value);
}

const STATUS_RUN_BYTES = 9;
const FLAG_HOLE = 1;
const FLAG_ZERO = 2;

export function encodeStatusRuns(runs: readonly ExtentStatus[]): Buffer {
  const payload = Buffer.alloc(4 + runs.length * STATUS_RUN_BYTES);
  payload.writeUInt32BE(runs.length, 0);
  runs.forEach((run, index) => {
    const at = 4 + index * STATUS_RUN_BYTES;
    payload.writeBigUInt64BE(BigInt(run.lengthBytes), at);
    payload.writeUInt8((run.hole ? FLAG_HOLE : 0) | (run.zero ? FLAG_ZERO : 0), at + 8);
  });
  return payload;
}

export function decodeStatusRuns(payload: Buffer): ExtentStatus[] | ReplicaProtocolError {
  if (payload.length < 4) return new ReplicaProtocolError('TRUNCATED', 'BLOCK_STATUS answer is truncated');
  const count = payload.readUInt32BE(0);
  if (count > MAX_STATUS_RUNS || payload.length !== 4 + count * STATUS_RUN_BYTES) {
    return new ReplicaProtocolError('BAD_LENGTH', `BLOCK_STATUS answer claims ${count} runs in ${payload.length} bytes`);
  }
  const runs: ExtentStatus[] = [];
  for (let index = 0; index < count; index += 1) {
    const at = 4 + index * STATUS_RUN_BYTES;
    const lengthBytes = payload.readBigUInt64BE(at);
    const flags = payload.readUInt8(at + 8);
    if (lengthBytes === 0n || lengthBytes > BigInt(Number.MAX_SAFE_INTEGER) || (flags & ~(FLAG_HOLE | FLAG_ZERO)) !== 0) {
      return new ReplicaProtocolError('BAD_NUMBER', `BLOCK_STATUS run ${index} is malformed`);
    }
    runs.push({ lengthBytes: Number(lengthBytes), hole: (flags & FLAG_HOLE) !== 0, zero: (flags & FLAG_ZERO) !== 0 });
  }
  return runs;
}

/**
 * A list of regions (fixed-size slices of the volume, by index) with the
 * replica's change marker at the time of the answer.
 * `complete` is false when the replica cannot answer for the whole interval
 * asked (its tracking restarted after the marker): copy everything.
 * `uncleanRestart`: the replica is flagged unclean for the volume (its node
 * started after an unclean end, crash or power loss, while holding it, and
 * no owner has made it identical to a good source since: MARK_REPAIRED), so
 * acknowledged writes not yet flushed may be missing from it: a new owner
 * takes it as failover source only when nothing else is left.
 */
export interface RegionList {
  readonly markerSeq: number;
  readonly complete: boolean;
  readonly uncleanRestart?: boolean;
  readonly regionSizeBytes: number;
  readonly regions: readonly number[];
}

const REGION_LIST_HEADER_BYTES = 17;

export function encodeRegionList(list: RegionList): Buffer {
  const payload = Buffer.alloc(REGION_LIST_HEADER_BYTES + list.regions.length * 4);
  payload.writeBigUInt64BE(BigInt(list.markerSeq), 0);
  // Flags: bit 0 complete, bit 1 unclean restart.
  payload.writeUInt8((list.complete ? 1 : 0) | (list.uncleanRestart === true ? 2 : 0), 8);
  payload.writeUInt32BE(list.regionSizeBytes, 9);
  payload.writeUInt32BE(list.regions.length, 13);
  list.regions.forEach((region, index) => payload.writeUInt32BE(region, REGION_LIST_HEADER_BYTES + index * 4));
  return payload;
}

export function decodeRegionList(payload: Buffer): RegionList | ReplicaProtocolError {
  if (payload.length < REGION_LIST_HEADER_BYTES) return new ReplicaProtocolError('TRUNCATED', 'region list is truncated');
  const markerSeq = payload.readBigUInt64BE(0);
  const completeByte = payload.readUInt8(8);
  const regionSizeBytes = payload.readUInt32BE(9);
  const count = payload.readUInt32BE(13);
  if (markerSeq > BigInt(Number.MAX_SAFE_INTEGER) || completeByte > 3 || regionSizeBytes === 0) {
    return new ReplicaProtocolError('BAD_NUMBER', 'region list header is malformed');
  }
  if (count > MAX_REGIONS_PER_REPLY || payload.length !== REGION_LIST_HEADER_BYTES + count * 4) {
    return new ReplicaProtocolError('BAD_LENGTH', `region list claims ${count} regions in ${payload.length} bytes`);
  }
  const regions: number[] = [];
  for (let index = 0; index < count; index += 1) regions.push(payload.readUInt32BE(REGION_LIST_HEADER_BYTES + index * 4));
  return { markerSeq: Number(markerSeq), complete: (completeByte & 1) === 1, uncleanRestart: (completeByte & 2) === 2, regionSizeBytes, regions };
}

export function encodeDirtyMarker(markerSeq: number): Buffer {
  const payload = Buffer.alloc(8);
  payload.writeBigUInt64BE(BigInt(markerSeq));
  return payload;
}

export function decodeDirtyMarker(payload: Buffer): number | ReplicaProtocolError {
  if (payload.length !== 8) return new ReplicaProtocolError('BAD_LENGTH', 'dirty marker must be 8 bytes');
  const value = payload.readBigUInt64BE(0);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) return new ReplicaProtocolError('BAD_NUMBER', 'dirty marker above 2^53');
  return Number(value);
}
