import t from 'tap';
import {
  decodeBlockStatusPayload,
  decodeErrorChunk,
  decodeOffsetData,
  decodeTransmissionReply,
  encodeRequest,
} from '../../../blockdev/nbd/client-codec.js';
import {
  NBD_CMD_BLOCK_STATUS,
  NBD_CMD_CACHE,
  NBD_CMD_DISC,
  NBD_CMD_FLAG_FUA,
  NBD_CMD_FLAG_NO_HOLE,
  NBD_CMD_FLAG_REQ_ONE,
  NBD_CMD_FLUSH,
  NBD_CMD_READ,
  NBD_CMD_TRIM,
  NBD_CMD_WRITE,
  NBD_CMD_WRITE_ZEROES,
  NBD_EIO,
  NBD_EINVAL,
  NBD_REPLY_FLAG_DONE,
  NBD_REPLY_TYPE_BLOCK_STATUS,
  NBD_REPLY_TYPE_ERROR,
  NBD_REPLY_TYPE_NONE,
  NBD_REPLY_TYPE_OFFSET_DATA,
  NBD_STATE_HOLE,
  NBD_STATE_ZERO,
} from '../../../blockdev/nbd/constants.js';
import { ProtocolError } from '../../../blockdev/nbd/protocol-error.js';
import {
  allocateOffsetDataChunk,
  allocateSimpleReadReply,
  decodeRequestHeader,
  encodeBlockStatusChunk,
  encodeSimpleReply,
  encodeStructuredError,
  encodeStructuredNone,
  OFFSET_DATA_HEADER_BYTES,
  type RequestHeader,
  writeOffsetDataHeader,
  writeSimpleReplyHeader,
} from '../../../blockdev/nbd/transmission-codec.js';

function ok<T>(value: T | ProtocolError | undefined): T {
  if (value instanceof ProtocolError) {
    throw new Error(`expected a decoded value, got ${value.message}`);
  }
  if (value === undefined) {
    throw new Error('expected a decoded value, got undefined');
  }
  return value;
}

const noReadLength = (): undefined => undefined;

t.test('request header round trip for every command', async (t) => {
  const headers: RequestHeader[] = [
    { flags: 0, type: NBD_CMD_READ, handle: 1n, offset: 0, lengthBytes: 4096 },
    { flags: NBD_CMD_FLAG_FUA, type: NBD_CMD_WRITE, handle: 0xffff_ffff_ffff_ffffn, offset: 2 ** 40, lengthBytes: 512 },
    { flags: 0, type: NBD_CMD_DISC, handle: 3n, offset: 0, lengthBytes: 0 },
    { flags: 0, type: NBD_CMD_FLUSH, handle: 4n, offset: 0, lengthBytes: 0 },
    { flags: NBD_CMD_FLAG_FUA, type: NBD_CMD_TRIM, handle: 5n, offset: 8192, lengthBytes: 0xffffffff },
    { flags: 0, type: NBD_CMD_CACHE, handle: 6n, offset: 1, lengthBytes: 1 },
    { flags: NBD_CMD_FLAG_NO_HOLE, type: NBD_CMD_WRITE_ZEROES, handle: 7n, offset: 0, lengthBytes: 65536 },
    { flags: NBD_CMD_FLAG_REQ_ONE, type: NBD_CMD_BLOCK_STATUS, handle: 8n, offset: 0, lengthBytes: 1 << 30 },
    { flags: 0xffff, type: 0xffff, handle: 9n, offset: Number.MAX_SAFE_INTEGER, lengthBytes: 0 },
  ];
  for (const header of headers) {
    const encoded = encodeRequest(header);
    t.equal(encoded.length, 28);
    t.same(ok(decodeRequestHeader(encoded)), header);
  }
});

t.test('a 64-bit offset beyond 2^53 decodes as an unsafe number that range checks refuse', async (t) => {
  const encoded = encodeRequest({ flags: 0, type: NBD_CMD_READ, handle: 1n, offset: 0, lengthBytes: 1 });
  encoded.writeUInt32BE(0xffffffff, 16);
  const header = ok(decodeRequestHeader(encoded));
  t.notOk(Number.isSafeInteger(header.offset));
  t.ok(header.offset > Number.MAX_SAFE_INTEGER);
});

t.test('request header: bad magic and truncation', async (t) => {
  const encoded = encodeRequest({ flags: 0, type: NBD_CMD_READ, handle: 1n, offset: 0, lengthBytes: 1 });
  const bad = Buffer.from(encoded);
  bad.writeUInt32BE(0x12560953, 0); // the historic magic, reserved by proto.md
  const badResult = decodeRequestHeader(bad);
  t.ok(badResult instanceof ProtocolError && badResult.reason === 'BAD_MAGIC');
  t.equal(badResult instanceof ProtocolError ? badResult.code : undefined, 'PROTOCOL_ERROR');
  const short = decodeRequestHeader(encoded.subarray(0, 27));
  t.ok(short instanceof ProtocolError && short.reason === 'TRUNCATED');
});

t.test('simple replies: without and with READ data', async (t) => {
  const reply = ok(decodeTransmissionReply(encodeSimpleReply(NBD_EINVAL, 42n), noReadLength));
  t.same(reply, { kind: 'simple', error: NBD_EINVAL, handle: 42n, data: Buffer.alloc(0), totalBytes: 16 });

  const read = allocateSimpleReadReply(5);
  read.write('hello', 16);
  writeSimpleReplyHeader(read, 0, 7n);
  const decoded = ok(decodeTransmissionReply(read, (handle) => (handle === 7n ? 5 : undefined)));
  t.equal(decoded.kind === 'simple' ? decoded.data.toString() : '', 'hello');
  t.equal(decodeTransmissionReply(read.subarray(0, 20), () => 5), undefined, 'incomplete data');
});

t.test('structured chunks: NONE, ERROR, OFFSET_DATA, BLOCK_STATUS', async (t) => {
  const none = ok(decodeTransmissionReply(encodeStructuredNone(1n), noReadLength));
  t.same(none.kind === 'structured' && [none.flags, none.type, none.payload.length], [NBD_REPLY_FLAG_DONE, NBD_REPLY_TYPE_NONE, 0]);

  const error = ok(decodeTransmissionReply(encodeStructuredError(2n, NBD_EIO, 'disk on fire'), noReadLength));
  t.equal(error.kind === 'structured' && error.type, NBD_REPLY_TYPE_ERROR);
  t.same(ok(decodeErrorChunk(error.kind === 'structured' ? error.payload : Buffer.alloc(0))), {
    error: NBD_EIO,
    message: 'disk on fire',
  });

  const chunk = allocateOffsetDataChunk(3);
  chunk.write('abc', OFFSET_DATA_HEADER_BYTES);
  writeOffsetDataHeader(chunk, NBD_REPLY_FLAG_DONE, 3n, 2 ** 33);
  const data = ok(decodeTransmissionReply(chunk, noReadLength));
  t.equal(data.kind === 'structured' && data.type, NBD_REPLY_TYPE_OFFSET_DATA);
  const offsetData = ok(decodeOffsetData(data.kind === 'structured' ? data.payload : Buffer.alloc(0)));
  t.same([offsetData.offset, offsetData.data.toString()], [2 ** 33, 'abc']);

  const descriptors = [
    { lengthBytes: 4096, flags: 0 },
    { lengthBytes: 65536, flags: NBD_STATE_HOLE | NBD_STATE_ZERO },
  ];
  const status = ok(decodeTransmissionReply(encodeBlockStatusChunk(4n, 1, descriptors), noReadLength));
  t.equal(status.kind === 'structured' && status.type, NBD_REPLY_TYPE_BLOCK_STATUS);
  t.same(ok(decodeBlockStatusPayload(status.kind === 'structured' ? status.payload : Buffer.alloc(0))), {
    contextId: 1,
    descriptors,
  });
});

t.test('error chunk messages are bounded', async (t) => {
  const reply = ok(decodeTransmissionReply(encodeStructuredError(1n, NBD_EIO, 'x'.repeat(10_000)), noReadLength));
  const payload = reply.kind === 'structured' ? reply.payload : Buffer.alloc(0);
  t.ok(ok(decodeErrorChunk(payload)).message.length <= 256);
});
