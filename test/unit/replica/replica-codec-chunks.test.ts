import t from 'tap';
import {
  decodeRequest,
  encodeReply,
  encodeReplyInto,
  encodeRequest,
  encodeRequestInto,
  INLINE_PAYLOAD_MAX_BYTES,
  replyFrameBytes,
  requestFrameBytes,
} from '../../../blockdev/replica/replica-codec.js';
import { Opcode, type ReplicaReply, type ReplicaRequest, Status } from '../../../blockdev/replica/replica-protocol.js';

/**
 * Framing into a shared buffer (perf round; replica-link.ts and
 * replica-connection.ts encode this way): the same bytes on the wire, the
 * frame may start anywhere in the buffer, and a large payload is left out of
 * the frame to follow as its own chunk.
 */

/** What the link sends: the frame encoded at `at` in a larger buffer, then the payload unless inline. */
function requestChunks(request: ReplicaRequest, at: number): Buffer[] {
  const inline = request.payload.length <= INLINE_PAYLOAD_MAX_BYTES;
  const bytes = requestFrameBytes(request, inline);
  const slab = Buffer.alloc(at + bytes + 7, 0xee);
  encodeRequestInto(request, slab, at, inline);
  const frame = slab.subarray(at, at + bytes);
  return inline ? [frame] : [frame, request.payload];
}

function replyChunks(reply: ReplicaReply, at: number): Buffer[] {
  const inline = reply.payload.length <= INLINE_PAYLOAD_MAX_BYTES;
  const bytes = replyFrameBytes(reply.payload.length, inline);
  const slab = Buffer.alloc(at + bytes + 7, 0xee);
  encodeReplyInto(reply, slab, at, inline);
  const frame = slab.subarray(at, at + bytes);
  return inline ? [frame] : [frame, reply.payload];
}

function writeRequest(payloadBytes: number): ReplicaRequest {
  const payload = Buffer.alloc(payloadBytes);
  for (let index = 0; index < payloadBytes; index += 1) payload[index] = index & 0xff;
  return { opcode: Opcode.WRITE, flags: 0, requestId: 2 ** 40 + 3, generation: 7, offset: 2 ** 45, lengthBytes: payloadBytes, volumeId: 'vol-ü', payload };
}

t.test('small payloads are copied into one frame, large ones follow as their own chunk', async (t) => {
  const small = writeRequest(4096);
  const smallChunks = requestChunks(small, 13);
  t.equal(smallChunks.length, 1);
  t.same(smallChunks[0], encodeRequest(small));

  const large = writeRequest(INLINE_PAYLOAD_MAX_BYTES + 1);
  const largeChunks = requestChunks(large, 5);
  t.equal(largeChunks.length, 2);
  t.equal(largeChunks[0]?.length, requestFrameBytes(large, false), 'the frame leaves the payload out');
  t.equal(largeChunks[1], large.payload, 'the payload itself, not a copy');
  const joined = Buffer.concat(largeChunks);
  t.same(joined, encodeRequest(large), 'same bytes as the one-frame encoding');
  t.same(decodeRequest(joined.subarray(4)), large, 'decodes to the request');

  const reply = { requestId: 9, status: Status.OK, payload: Buffer.alloc(INLINE_PAYLOAD_MAX_BYTES * 2, 5) };
  const chunks = replyChunks(reply, 3);
  t.equal(chunks.length, 2);
  t.equal(chunks[1], reply.payload);
  t.same(Buffer.concat(chunks), encodeReply(reply));
});

t.test('numbers above 2^53 are refused on both sides', async (t) => {
  t.throws(() => requestChunks({ ...writeRequest(0), offset: 2 ** 53 }, 0), { code: 'PROTOCOL_ERROR' });
  const frame = encodeRequest(writeRequest(0));
  frame.writeUInt32BE(0x00200000, 4 + 24); // offset high word = 2^53 / 2^32
  const decoded = decodeRequest(frame.subarray(4));
  t.ok(decoded instanceof Error && 'reason' in decoded && decoded.reason === 'BAD_NUMBER', 'decoder refuses the offset');
});
