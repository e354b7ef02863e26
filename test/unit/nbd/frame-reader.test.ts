import t from 'tap';
import {
  encodeClientFlags,
  encodeInfoRequestData,
  encodeMetaContextData,
  encodeOption,
  encodeRequest,
} from '../../../blockdev/nbd/client-codec.js';
import {
  NBD_CMD_DISC,
  NBD_CMD_FLAG_FUA,
  NBD_CMD_FLUSH,
  NBD_CMD_READ,
  NBD_CMD_TRIM,
  NBD_CMD_WRITE,
  NBD_FLAG_C_FIXED_NEWSTYLE,
  NBD_FLAG_C_NO_ZEROES,
  NBD_INFO_BLOCK_SIZE,
  NBD_OPT_GO,
  NBD_OPT_LIST,
  NBD_OPT_SET_META_CONTEXT,
  NBD_OPT_STRUCTURED_REPLY,
} from '../../../blockdev/nbd/constants.js';
import { FrameReader, type FrameReaderLimits } from '../../../blockdev/nbd/frame-reader.js';
import { ProtocolError } from '../../../blockdev/nbd/protocol-error.js';

/**
 * pg-protocol style: the same byte stream, cut at every possible place,
 * must yield the same messages (and the same final error, if any).
 */

const LIMITS: FrameReaderLimits = { maxOptionDataBytes: 1024, maxPayloadBytes: 64, maxDiscardedWriteBytes: 256 };

type Seen = string;

/** Feed chunks the way the connection does: push, pull until nothing, switch phase after GO. */
function run(chunks: readonly Buffer[]): Seen[] {
  const reader = new FrameReader(LIMITS);
  const seen: Seen[] = [];
  for (const chunk of chunks) {
    reader.push(chunk);
    for (;;) {
      const message = reader.next();
      if (message === undefined) break;
      if (message instanceof ProtocolError) {
        seen.push(`error:${message.reason}`);
        return seen;
      }
      switch (message.kind) {
        case 'clientFlags':
          seen.push(`flags:${JSON.stringify(message.flags)}`);
          break;
        case 'option':
          seen.push(`option:${message.option}:${message.data.toString('hex')}`);
          if (message.option === NBD_OPT_GO) reader.startTransmission();
          break;
        case 'request': {
          const { header } = message;
          const payload = message.payload?.toString('hex') ?? '-';
          seen.push(
            `request:${header.type}:${header.flags}:${header.handle}:${header.offset}:${header.lengthBytes}:${payload}:${message.payloadDiscarded}`,
          );
          break;
        }
      }
    }
  }
  return seen;
}

function splitAt(stream: Buffer, ...cuts: number[]): Buffer[] {
  const chunks: Buffer[] = [];
  let start = 0;
  for (const cut of [...cuts, stream.length]) {
    chunks.push(stream.subarray(start, cut));
    start = cut;
  }
  return chunks;
}

function pattern(lengthBytes: number, seed: number): Buffer {
  const bytes = Buffer.alloc(lengthBytes);
  for (let index = 0; index < lengthBytes; index += 1) bytes[index] = (index * 31 + seed) & 0xff;
  return bytes;
}

const handshakeBytes = Buffer.concat([
  encodeClientFlags(NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES),
  encodeOption(NBD_OPT_STRUCTURED_REPLY),
  encodeOption(NBD_OPT_LIST),
  encodeOption(NBD_OPT_SET_META_CONTEXT, encodeMetaContextData('vol1', ['base:allocation'])),
  encodeOption(NBD_OPT_GO, encodeInfoRequestData('vol1', [NBD_INFO_BLOCK_SIZE])),
]);

const transmissionBytes = Buffer.concat([
  encodeRequest({ flags: 0, type: NBD_CMD_READ, handle: 1n, offset: 4096, lengthBytes: 512 }),
  encodeRequest({ flags: NBD_CMD_FLAG_FUA, type: NBD_CMD_WRITE, handle: 2n, offset: 0, lengthBytes: 40 }, pattern(40, 1)),
  encodeRequest({ flags: 0, type: NBD_CMD_WRITE, handle: 3n, offset: 7, lengthBytes: 0 }),
  encodeRequest({ flags: 0, type: NBD_CMD_FLUSH, handle: 4n, offset: 0, lengthBytes: 0 }),
  // Over maxPayloadBytes (64) but under maxDiscardedWriteBytes (256): skipped, stream stays in sync.
  encodeRequest({ flags: 0, type: NBD_CMD_WRITE, handle: 5n, offset: 0, lengthBytes: 200 }, pattern(200, 2)),
  encodeRequest({ flags: 0, type: NBD_CMD_WRITE, handle: 6n, offset: 64, lengthBytes: 64 }, pattern(64, 3)),
  encodeRequest({ flags: 0, type: NBD_CMD_TRIM, handle: 7n, offset: 2 ** 40, lengthBytes: 0xffffffff }),
  encodeRequest({ flags: 0, type: NBD_CMD_DISC, handle: 8n, offset: 0, lengthBytes: 0 }),
]);

const fullStream = Buffer.concat([handshakeBytes, transmissionBytes]);

t.test('the whole conversation in one chunk', async (t) => {
  const seen = run([fullStream]);
  t.equal(seen.length, 1 + 4 + 8);
  t.match(seen[0], /^flags:.*"fixedNewstyle":true/);
  t.match(seen[9], /^request:1:0:5n?:0:200:-:true$/, 'oversized write is reported as discarded');
  t.match(seen[10], new RegExp(`^request:1:0:6n?:64:64:${pattern(64, 3).toString('hex')}:false$`));
});

t.test('every split point gives the same messages', async (t) => {
  const expected = run([fullStream]);
  let mismatches = 0;
  for (let cut = 0; cut <= fullStream.length; cut += 1) {
    if (JSON.stringify(run(splitAt(fullStream, cut))) !== JSON.stringify(expected)) mismatches += 1;
  }
  t.equal(mismatches, 0, `split at each of ${fullStream.length + 1} offsets`);
});

t.test('byte-by-byte delivery gives the same messages', async (t) => {
  const expected = run([fullStream]);
  const bytes = [...fullStream].map((byte) => Buffer.from([byte]));
  t.same(run(bytes), expected);
});

t.test('every pair of split points in the transmission part gives the same messages', async (t) => {
  const expected = run([fullStream]);
  let mismatches = 0;
  const base = handshakeBytes.length;
  for (let first = base; first <= fullStream.length; first += 3) {
    for (let second = first; second <= fullStream.length; second += 7) {
      if (JSON.stringify(run(splitAt(fullStream, first, second))) !== JSON.stringify(expected)) mismatches += 1;
    }
  }
  t.equal(mismatches, 0);
});

t.test('a message inside one chunk is a view of it; a split one is assembled', async (t) => {
  const write = encodeRequest({ flags: 0, type: NBD_CMD_WRITE, handle: 1n, offset: 0, lengthBytes: 32 }, pattern(32, 9));
  const reader = new FrameReader(LIMITS);
  reader.push(Buffer.concat([encodeClientFlags(0), encodeOption(NBD_OPT_GO, encodeInfoRequestData('x', []))]));
  reader.next();
  reader.next();
  reader.startTransmission();
  reader.push(write);
  const message = reader.next();
  if (message === undefined || message instanceof ProtocolError || message.kind !== 'request' || message.payload === undefined) {
    throw new Error('expected a WRITE');
  }
  t.equal(message.payload.buffer, write.buffer, 'payload shares memory with the received chunk');
  t.equal(reader.bufferedByteCount, 0);
});

function errorCase(name: string, stream: Buffer, reason: string, messagesBefore: number): void {
  t.test(`${name}: ProtocolError ${reason} at every split`, async (t) => {
    const expected = run([stream]);
    t.equal(expected.length, messagesBefore + 1);
    t.equal(expected[expected.length - 1], `error:${reason}`);
    for (let cut = 0; cut <= stream.length; cut += 1) {
      const seen = run(splitAt(stream, cut));
      if (JSON.stringify(seen) !== JSON.stringify(expected)) {
        t.fail(`split at ${cut}: ${JSON.stringify(seen)}`);
        return;
      }
    }
  });
}

const flags = encodeClientFlags(NBD_FLAG_C_FIXED_NEWSTYLE);
const go = encodeOption(NBD_OPT_GO, encodeInfoRequestData('v', []));
const badOption = encodeOption(NBD_OPT_LIST);
badOption.write('IHAVEOPX', 0, 'latin1');
const badRequest = encodeRequest({ flags: 0, type: NBD_CMD_READ, handle: 1n, offset: 0, lengthBytes: 1 });
badRequest.writeUInt32BE(0xdeadbeef, 0);
const tooBigOption = encodeOption(NBD_OPT_LIST, Buffer.alloc(LIMITS.maxOptionDataBytes + 1));
const tooBigWrite = encodeRequest({ flags: 0, type: NBD_CMD_WRITE, handle: 1n, offset: 0, lengthBytes: 257 });

errorCase('unknown client flags', encodeClientFlags(0x80), 'BAD_CLIENT_FLAGS', 0);
errorCase('option without IHAVEOPT', Buffer.concat([flags, encodeOption(NBD_OPT_LIST), badOption]), 'BAD_MAGIC', 2);
errorCase('option data over the limit', Buffer.concat([flags, tooBigOption]), 'OPTION_TOO_LARGE', 1);
errorCase('request with a wrong magic', Buffer.concat([flags, go, badRequest]), 'BAD_MAGIC', 2);
errorCase('write too large to skip', Buffer.concat([flags, go, tooBigWrite]), 'PAYLOAD_TOO_LARGE', 2);

t.test('after a protocol error the reader stays failed and holds nothing', async (t) => {
  const reader = new FrameReader(LIMITS);
  reader.push(encodeClientFlags(0x80));
  const first = reader.next();
  reader.push(Buffer.alloc(1000));
  t.equal(reader.next(), first);
  t.equal(reader.bufferedByteCount, 0);
});

t.test('option-too-large error names the option so the server can answer it', async (t) => {
  const reader = new FrameReader(LIMITS);
  reader.push(Buffer.concat([flags, tooBigOption.subarray(0, 16)]));
  reader.next();
  const error = reader.next();
  t.ok(error instanceof ProtocolError);
  t.equal(error instanceof ProtocolError ? error.details['option'] : undefined, NBD_OPT_LIST);
});
