/**
 * The data of a 'normal' log entry as the node runner writes it: a batch of
 * commands, so every proposal queued during one event-loop turn travels as
 * ONE entry (one append, one sync) instead of one entry each.
 *
 *   u8 version | u32 count | count × ( u8 kind | u32 length | bytes )
 *
 * kind 0 is an application command; kind 1 is the runner's own replicated
 * address book (a peer's id and peer-port address, JSON), so a node that joins
 * later or a new leader can reach every member. An empty entry (a new leader's
 * no-op, Raft §8) decodes to no commands. Pure functions.
 */
import { PlinthError } from '../../common/plinth-error.js';
import type { PeerAddress } from '../transport/transport-types.js';

const BATCH_VERSION = 1;
const HEADER_BYTES = 5;
const ITEM_HEADER_BYTES = 5;
/** Bound on commands in one entry, so a corrupt count cannot allocate much. */
export const MAX_COMMANDS_PER_BATCH = 65_536;

export type BatchItem =
  | { readonly kind: 'command'; readonly command: Buffer }
  | { readonly kind: 'peer-address'; readonly nodeId: string; readonly address: PeerAddress };

export function encodeBatch(items: readonly BatchItem[]): Buffer {
  if (items.length > MAX_COMMANDS_PER_BATCH) {
    throw new PlinthError('TOO_LARGE', 'too many commands in one batch', { count: items.length });
  }
  const bodies = items.map((item) =>
    item.kind === 'command' ? item.command : Buffer.from(JSON.stringify({ nodeId: item.nodeId, ...item.address }), 'utf8'),
  );
  const total = HEADER_BYTES + bodies.reduce((sum, body) => sum + ITEM_HEADER_BYTES + body.length, 0);
  const out = Buffer.allocUnsafe(total);
  out.writeUInt8(BATCH_VERSION, 0);
  out.writeUInt32BE(items.length, 1);
  let offset = HEADER_BYTES;
  items.forEach((item, i) => {
    const body = bodies[i] as Buffer;
    out.writeUInt8(item.kind === 'command' ? 0 : 1, offset);
    out.writeUInt32BE(body.length, offset + 1);
    body.copy(out, offset + ITEM_HEADER_BYTES);
    offset += ITEM_HEADER_BYTES + body.length;
  });
  return out;
}

/** Throws INTERNAL on malformed data: the entry came through Raft intact (CRC-checked), so this is a bug. */
export function decodeBatch(data: Buffer): BatchItem[] {
  if (data.length === 0) return [];
  if (data.length < HEADER_BYTES || data.readUInt8(0) !== BATCH_VERSION) throw malformed('bad header');
  const count = data.readUInt32BE(1);
  if (count > MAX_COMMANDS_PER_BATCH) throw malformed('count above the limit');
  const items: BatchItem[] = [];
  let offset = HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    if (offset + ITEM_HEADER_BYTES > data.length) throw malformed('truncated item header');
    const kind = data.readUInt8(offset);
    const length = data.readUInt32BE(offset + 1);
    const start = offset + ITEM_HEADER_BYTES;
    if (start + length > data.length) throw malformed('truncated item');
    const body = data.subarray(start, start + length);
    offset = start + length;
    if (kind === 0) items.push({ kind: 'command', command: body });
    else if (kind === 1) items.push(decodePeerAddress(body));
    else throw malformed(`unknown item kind ${kind}`);
  }
  if (offset !== data.length) throw malformed('trailing bytes');
  return items;
}

function decodePeerAddress(body: Buffer): BatchItem {
  const parsed: unknown = JSON.parse(body.toString('utf8'));
  if (typeof parsed !== 'object' || parsed === null) throw malformed('peer address is not an object');
  const record = parsed as Record<string, unknown>;
  const { nodeId, host, port } = record;
  if (typeof nodeId !== 'string' || typeof host !== 'string' || typeof port !== 'number') throw malformed('peer address fields');
  return { kind: 'peer-address', nodeId, address: { host, port } };
}

function malformed(reason: string): PlinthError {
  return new PlinthError('INTERNAL', `malformed command batch in the raft log: ${reason}`, { reason });
}
