import t from 'tap';
import { encodeRequest } from '../../../blockdev/nbd/client-codec.js';
import { NBD_CMD_FLUSH, NBD_CMD_READ, NBD_CMD_WRITE, REQUEST_HEADER_BYTES } from '../../../blockdev/nbd/constants.js';
import { FrameReader, type FrameReaderLimits, MAX_WRITE_PAYLOAD_CHUNKS, MIN_CHUNKED_PAYLOAD_BYTES } from '../../../blockdev/nbd/frame-reader.js';
import { ProtocolError } from '../../../blockdev/nbd/protocol-error.js';

/**
 * keepPayloadChunks (perf round 2): a large WRITE payload that spans socket
 * chunks comes back as views of them instead of one assembled copy. Cut the
 * stream anywhere: the concatenated views must be the payload, byte-exact,
 * and every other message must be unchanged.
 */

const LIMITS: FrameReaderLimits = { maxOptionDataBytes: 1024, maxPayloadBytes: 1024 * 1024, maxDiscardedWriteBytes: 2 * 1024 * 1024 };

function patterned(lengthBytes: number, seed: number): Buffer {
  const bytes = Buffer.alloc(lengthBytes);
  for (let index = 0; index < lengthBytes; index += 1) {
    bytes[index] = (index * 31 + seed * 7 + (index >> 8)) & 0xff;
  }
  return bytes;
}

const BIG = patterned(MIN_CHUNKED_PAYLOAD_BYTES + 100, 1);
const SMALL = patterned(300, 2);
const STREAM = Buffer.concat([
  encodeRequest({ flags: 0, type: NBD_CMD_WRITE, handle: 1n, offset: 0, lengthBytes: BIG.length }, BIG),
  encodeRequest({ flags: 0, type: NBD_CMD_READ, handle: 2n, offset: 4096, lengthBytes: 4096 }),
  encodeRequest({ flags: 0, type: NBD_CMD_WRITE, handle: 3n, offset: 512, lengthBytes: SMALL.length }, SMALL),
  encodeRequest({ flags: 0, type: NBD_CMD_FLUSH, handle: 4n, offset: 0, lengthBytes: 0 }),
]);

interface Seen {
  readonly handle: bigint;
  readonly payload: Buffer | undefined;
  readonly chunks: readonly Buffer[] | undefined;
  /** How many views the payload came in (0: a single Buffer, or none). */
  readonly views: number;
}

function run(chunks: readonly Buffer[]): Seen[] {
  const reader = new FrameReader(LIMITS);
  reader.startTransmission(true);
  const seen: Seen[] = [];
  for (const chunk of chunks) {
    reader.push(chunk);
    for (let message = reader.next(); message !== undefined; message = reader.next()) {
      if (message instanceof ProtocolError || message.kind !== 'request') {
        throw new Error(`unexpected message ${message instanceof ProtocolError ? message.reason : message.kind}`);
      }
      const views = message.payloadChunks;
      seen.push({ handle: message.header.handle, payload: message.payload, chunks: views, views: views?.length ?? 0 });
    }
  }
  if (reader.bufferedByteCount !== 0) {
    throw new Error(`${reader.bufferedByteCount} bytes left over`);
  }
  return seen;
}

/** The payload (single buffer or views) equals `expected`, compared in place (no copy: this runs 66 000 times). */
function payloadEquals(seen: Seen | undefined, expected: Buffer): boolean {
  if (seen === undefined) return false;
  if (seen.chunks === undefined) return seen.payload?.equals(expected) === true;
  let position = 0;
  for (const view of seen.chunks) {
    if (!view.equals(expected.subarray(position, position + view.length))) return false;
    position += view.length;
  }
  return position === expected.length && seen.payload === undefined;
}

function check(seen: readonly Seen[], label: string): boolean {
  const ok =
    seen.length === 4 &&
    seen[0]?.handle === 1n &&
    payloadEquals(seen[0], BIG) &&
    seen[1]?.handle === 2n &&
    seen[1].payload === undefined &&
    seen[2]?.handle === 3n &&
    payloadEquals(seen[2], SMALL) &&
    seen[2].views === 0 &&
    seen[3]?.handle === 4n;
  if (!ok) {
    t.fail(`${label}: messages differ`);
  }
  return ok;
}

t.test('the large payload split at every byte (two chunks) comes back byte-exact as views', async (t) => {
  let viewsSeen = 0;
  for (let cut = 1; cut < STREAM.length; cut += 1) {
    const seen = run([STREAM.subarray(0, cut), STREAM.subarray(cut)]);
    if (!check(seen, `cut at ${cut}`)) return;
    const first = seen[0];
    // Spans two chunks only when the cut falls inside the big payload.
    const inside = cut > REQUEST_HEADER_BYTES && cut < REQUEST_HEADER_BYTES + BIG.length;
    if (first !== undefined && first.views !== (inside ? 2 : 0)) {
      t.fail(`cut at ${cut}: ${first.views} views`);
      return;
    }
    viewsSeen += first?.views ?? 0;
  }
  t.ok(viewsSeen > 0, 'views were returned');
});

t.test('many small chunks: up to the limit as views, beyond it assembled', async (t) => {
  const pieceBytes = Math.ceil(STREAM.length / (MAX_WRITE_PAYLOAD_CHUNKS - 1));
  const fewer: Buffer[] = [];
  for (let start = 0; start < STREAM.length; start += pieceBytes) fewer.push(STREAM.subarray(start, start + pieceBytes));
  const seenFewer = run(fewer);
  t.ok(check(seenFewer, 'few pieces'));
  t.ok((seenFewer[0]?.views ?? 0) > 1 && (seenFewer[0]?.views ?? 0) <= MAX_WRITE_PAYLOAD_CHUNKS, 'payload as views');

  const byteByByte: Buffer[] = [];
  for (let index = 0; index < STREAM.length; index += 1) byteByByte.push(STREAM.subarray(index, index + 1));
  const seenBytes = run(byteByByte);
  t.ok(check(seenBytes, 'byte by byte'));
  t.equal(seenBytes[0]?.views, 0, 'over MAX_WRITE_PAYLOAD_CHUNKS pieces the payload is assembled');
});

t.test('without keepPayloadChunks nothing changes: payloads are single buffers', async (t) => {
  const reader = new FrameReader(LIMITS);
  reader.startTransmission();
  reader.push(STREAM.subarray(0, 1000));
  reader.push(STREAM.subarray(1000));
  const message = reader.next();
  if (message === undefined || message instanceof ProtocolError || message.kind !== 'request') throw new Error('no request');
  t.equal(message.payloadChunks, undefined);
  t.same(message.payload, BIG);
});
