/**
 * The snapshot image the runner stores and ships (Raft §7): the replicated
 * address book plus the application state machine's own image.
 *
 *   u32 address-book JSON length | address-book JSON | application image
 */
import { PlinthError } from '../../common/plinth-error.js';
import type { PeerAddress } from '../transport/transport-types.js';

export interface NodeSnapshotImage {
  readonly addresses: ReadonlyMap<string, PeerAddress>;
  readonly application: Buffer;
}

export function encodeNodeSnapshot(image: NodeSnapshotImage): Buffer {
  const book = Buffer.from(JSON.stringify([...image.addresses.entries()]), 'utf8');
  const header = Buffer.allocUnsafe(4);
  header.writeUInt32BE(book.length, 0);
  return Buffer.concat([header, book, image.application]);
}

export function decodeNodeSnapshot(data: Buffer): NodeSnapshotImage {
  if (data.length < 4) throw malformed('shorter than its header');
  const bookBytes = data.readUInt32BE(0);
  if (4 + bookBytes > data.length) throw malformed('address book overruns the image');
  const parsed: unknown = JSON.parse(data.toString('utf8', 4, 4 + bookBytes));
  if (!Array.isArray(parsed)) throw malformed('address book is not a list');
  const addresses = new Map<string, PeerAddress>();
  for (const pair of parsed) {
    if (!Array.isArray(pair) || typeof pair[0] !== 'string') throw malformed('address book entry');
    const address: unknown = pair[1];
    if (typeof address !== 'object' || address === null) throw malformed('address');
    const { host, port } = address as Record<string, unknown>;
    if (typeof host !== 'string' || typeof port !== 'number') throw malformed('address fields');
    addresses.set(pair[0], { host, port });
  }
  return { addresses, application: data.subarray(4 + bookBytes) };
}

function malformed(reason: string): PlinthError {
  return new PlinthError('INTERNAL', `malformed raft node snapshot: ${reason}`, { reason });
}
