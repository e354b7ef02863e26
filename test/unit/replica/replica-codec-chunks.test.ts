import t from 'tap';
import {
  decodeRequest,
  encodeReply,
  encodeReplyChunks,
  encodeRequest,
  encodeRequestChunks,
  INLINE_PAYLOAD_MAX_BYTES,
} from '../../../blockdev/replica/replica-codec.js';
import { Opcode, type ReplicaRequest, Status } from '../../../blockdev/replica/replica-protocol.js';

/** Chunked framing (perf round): the same bytes on the wire, large payloads not copied. */

function writeRequest(payloadBytes: number): ReplicaRequest {
  const payload = Buffer.alloc(payloadBytes);
  for (let index = 0; index < payloadBytes; index += 1) payload[index] = index & 0xff;
  return { opcode: Opcode.WRITE, flags: 0, requestId: 2 ** 40 + 3, generation: 7, offset: 2 ** 45, lengthBytes: payloadBytes, volumeId: 'vol-ü', payload };
}

t.test('small payloads are copied into one frame, large ones follow as their own chunk', async (t) => {
  const small = writeRequest(4096);
  const smallChunks = encodeRequestChunks(small);
  t.equal(smallChunks.length, 1);
  t.same(smallChunks[0], encodeRequest(small));

  const large = writeRequest(INLINE_PAYLOAD_MAX_BYTES + 1);
  const largeChunks = encodeRequestChunks(large);
  t.equal(largeChunks.length, 2);
  t.equal(largeChunks[1], large.payload, 'the payload itself, not a copy');
  const joined = Buffer.concat(largeChunks);
  t.same(joined, encodeRequest(large), 'same bytes as the one-frame encoding');
  t.same(decodeRequest(joined.subarray(4)), large, 'decodes to the request');

  const reply = { requestId: 9, status: Status.OK, payload: Buffer.alloc(INLINE_PAYLOAD_MAX_BYTES * 2, 5) };
  const replyChunks = encodeReplyChunks(reply);
  t.equal(replyChunks.length, 2);
  t.equal(replyChunks[1], reply.payload);
  t.same(Buffer.concat(replyChunks), encodeReply(reply));
});

t.test('numbers above 2^53 are refused on both sides', async (t) => {
  t.throws(() => encodeRequestChunks({ ...writeRequest(0), offset: 2 ** 53 }), { code: 'PROTOCOL_ERROR' });
  const frame = encodeRequest(writeRequest(0));
  frame.writeUInt32BE(0x00200000, 4 + 24); // offset high word = 2^53 / 2^32
  const decoded = decodeRequest(frame.subarray(4));
  t.ok(decoded instanceof Error && 'reason' in decoded && decoded.reason === 'BAD_NUMBER', 'decoder refuses the offset');
});
