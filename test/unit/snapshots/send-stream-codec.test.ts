import t from 'tap';
import { SeededPrng } from '../../../common/prng.js';
import { isPlinthError } from '../../../common/plinth-error.js';
import {
  CHUNK_PREFIX_BYTES,
  encodeHeader,
  HEADER_PREFIX_BYTES,
  MAX_CHUNK_BYTES,
  SEND_STREAM_VERSION,
  type SendStreamHeader,
  type StreamChunk,
} from '../../../daemon/snapshots/send-stream-codec.js';
import { SendStreamDecoder, type SendStreamEvent } from '../../../daemon/snapshots/send-stream-decoder.js';
import { sendStream } from '../../../daemon/snapshots/send-stream-source.js';
import { MemoryBlockDevice } from '../../helpers/memory-block-device.js';

/** The send stream codec (docs/snapshots.md "Stream format"): round trips, every corruption class, splits, bounds. */

const EXTENT = 64 * 1024;
const CHUNK = 16 * 1024;
const SIZE = 8 * EXTENT;

const IDENTITY = {
  sourceClusterId: 'cluster-a',
  volumeName: 'db',
  volumeId: 'vol-1234',
  snapshotName: 'nightly',
  snapshotId: 'snap-5678',
  base: null,
  extentSizeBytes: EXTENT,
  chunkSizeBytes: CHUNK,
  createdAtMs: 1_790_000_000_000,
} as const;

/** A device with a pattern in extents 0, 2 and 5 (extent 5 half zero, so both chunk kinds appear). */
async function patternDevice(): Promise<MemoryBlockDevice> {
  const device = new MemoryBlockDevice({ sizeBytes: SIZE });
  for (const extent of [0, 2, 5]) {
    const data = Buffer.alloc(extent === 5 ? EXTENT / 2 : EXTENT);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7 + extent) & 0xff;
    await device.write(extent * EXTENT, data);
  }
  return device;
}

async function streamBytes(fromChunk = 0): Promise<Buffer> {
  const device = await patternDevice();
  const pieces: Buffer[] = [];
  for await (const piece of sendStream({ ...IDENTITY, fromChunk }, { device, extents: [0, 2, 5] })) pieces.push(piece);
  return Buffer.concat(pieces);
}

function decodeAll(bytes: Buffer, splits: readonly number[] = [], decoder = new SendStreamDecoder()): SendStreamEvent[] {
  const events: SendStreamEvent[] = [];
  let at = 0;
  for (const split of [...splits, bytes.length]) {
    events.push(...decoder.push(bytes.subarray(at, split)));
    at = split;
  }
  decoder.finish();
  return events;
}

function chunksOf(events: readonly SendStreamEvent[]): StreamChunk[] {
  return events.flatMap((event) => (event.type === 'chunk' ? [event.chunk] : []));
}

/** Offset of chunk `sequence`'s frame in a stream from chunk 0 (data chunks carry CHUNK bytes). */
function frameOffset(bytes: Buffer, sequence: number): number {
  let at = HEADER_PREFIX_BYTES + bytes.readUInt32BE(HEADER_PREFIX_BYTES - 4) + 32;
  for (let i = 0; i < sequence; i++) at += CHUNK_PREFIX_BYTES + (bytes[at] === 0x44 ? bytes.readUInt32BE(at + 13) : 0) + 32;
  return at;
}

t.test('round trip: header, chunks (data and zero) and the verified end', async (t) => {
  const bytes = await streamBytes();
  const events = decodeAll(bytes);
  const header = events[0];
  t.equal(header?.type, 'header');
  if (header?.type !== 'header') return;
  t.match(header.header, { version: SEND_STREAM_VERSION, volumeName: 'db', snapshotId: 'snap-5678', baseSnapshotId: null, volumeSizeBytes: SIZE, chunkSizeBytes: CHUNK, totalChunkCount: 12, firstChunk: 0 });
  const chunks = chunksOf(events);
  t.equal(chunks.length, 12, '3 extents × 4 chunks');
  t.same(chunks.map((chunk) => chunk.kind), [...Array<string>(10).fill('data'), 'zero', 'zero'], 'the half-empty extent ends in zero chunks');
  const device = await patternDevice();
  for (const chunk of chunks) {
    if (chunk.data === undefined) continue;
    const expected = Buffer.alloc(chunk.lengthBytes);
    await device.read(chunk.offsetBytes, expected);
    t.ok(chunk.data.equals(expected), `chunk ${chunk.sequence} carries the device's bytes`);
  }
  t.match(events.at(-1), { type: 'end', chunkCount: 12 });
});

t.test('every split of the stream decodes the same (one byte at a time, and every single split point)', async (t) => {
  const bytes = await streamBytes();
  const whole = chunksOf(decodeAll(bytes));
  const decoder = new SendStreamDecoder();
  const bytewise: SendStreamEvent[] = [];
  for (let i = 0; i < bytes.length; i++) bytewise.push(...decoder.push(bytes.subarray(i, i + 1)));
  decoder.finish();
  t.same(chunksOf(bytewise).map((chunk) => [chunk.sequence, chunk.offsetBytes, chunk.kind]), whole.map((chunk) => [chunk.sequence, chunk.offsetBytes, chunk.kind]));
  // Every split point of the header and the first frames; the rest in strides (keeps the test fast).
  let failures = 0;
  for (let split = 1; split < bytes.length; split += split < 400 ? 1 : 997) {
    if (chunksOf(decodeAll(bytes, [split])).length !== whole.length) failures += 1;
  }
  t.equal(failures, 0);
});

t.test('resume: a stream from chunk N continues the chain saved at N and verifies the trailer', async (t) => {
  const full = decodeAll(await streamBytes());
  const afterFive = full.find((event) => event.type === 'chunk' && event.chunk.sequence === 4);
  if (afterFive?.type !== 'chunk') throw new Error('no chunk 4');
  const resume = { nextChunk: 5, chainDigest: afterFive.chain, minOffsetBytes: afterFive.chunk.offsetBytes + afterFive.chunk.lengthBytes };
  const resumed = decodeAll(await streamBytes(5), [], new SendStreamDecoder({ resume }));
  t.same(chunksOf(resumed).map((chunk) => chunk.sequence), [5, 6, 7, 8, 9, 10, 11]);
  t.match(resumed.at(-1), { type: 'end', chunkCount: 12 });

  const from5 = await streamBytes(5);
  t.throws(() => decodeAll(from5), { code: 'STREAM_OUT_OF_ORDER' }, 'a resumed stream needs a resume point');
  const wrongChain = { ...resume, chainDigest: Buffer.alloc(32, 1) };
  t.throws(() => decodeAll(from5, [], new SendStreamDecoder({ resume: wrongChain })), { code: 'STREAM_CHECKSUM_MISMATCH' }, 'a wrong saved chain fails at the trailer');
  const from6 = await streamBytes(6);
  t.throws(() => decodeAll(from6, [], new SendStreamDecoder({ resume })), { code: 'STREAM_OUT_OF_ORDER' }, 'a stream starting at another chunk');
});

function flip(bytes: Buffer, at: number, mask: number): void {
  bytes[at] = (bytes[at] ?? 0) ^ mask;
}

t.test('corruption classes are refused with their own codes', async (t) => {
  const good = await streamBytes();
  const mutate = (change: (bytes: Buffer) => void): Buffer => {
    const copy = Buffer.from(good);
    change(copy);
    return copy;
  };
  const chunk3 = frameOffset(good, 3);
  const cases: Array<[string, Buffer, string]> = [
    ['bad magic', mutate((b) => { b[0] = 0x58; }), 'STREAM_BAD_MAGIC'],
    ['unknown version', mutate((b) => b.writeUInt16BE(9, 6)), 'STREAM_BAD_VERSION'],
    ['header byte flipped', mutate((b) => flip(b, HEADER_PREFIX_BYTES + 3, 1)), 'STREAM_CHECKSUM_MISMATCH'],
    ['oversized header', mutate((b) => b.writeUInt32BE(1 << 20, 8)), 'STREAM_MALFORMED'],
    ['data byte flipped', mutate((b) => flip(b, chunk3 + CHUNK_PREFIX_BYTES + 100, 0x40)), 'STREAM_CHECKSUM_MISMATCH'],
    ['chunk digest flipped', mutate((b) => flip(b, chunk3 + CHUNK_PREFIX_BYTES + CHUNK + 5, 1)), 'STREAM_CHECKSUM_MISMATCH'],
    ['sequence skipped', mutate((b) => b.writeUInt32BE(4, chunk3 + 1)), 'STREAM_OUT_OF_ORDER'],
    ['offset past the volume', mutate((b) => b.writeBigUInt64BE(BigInt(SIZE), chunk3 + 5)), 'STREAM_OUT_OF_RANGE'],
    ['length over the chunk size', mutate((b) => b.writeUInt32BE(MAX_CHUNK_BYTES + 1, chunk3 + 13)), 'STREAM_OUT_OF_RANGE'],
    ['offset going backwards', mutate((b) => b.writeBigUInt64BE(0n, chunk3 + 5)), 'STREAM_OUT_OF_ORDER'],
    ['unknown frame kind', mutate((b) => { b[chunk3] = 0x51; }), 'STREAM_MALFORMED'],
    ['trailer digest flipped', mutate((b) => flip(b, b.length - 1, 1)), 'STREAM_CHECKSUM_MISMATCH'],
    ['truncated mid-chunk', good.subarray(0, chunk3 + 40), 'STREAM_TRUNCATED'],
    ['truncated before the trailer', good.subarray(0, good.length - 37), 'STREAM_TRUNCATED'],
    ['truncated in the header', good.subarray(0, 20), 'STREAM_TRUNCATED'],
    ['empty', Buffer.alloc(0), 'STREAM_TRUNCATED'],
    ['bytes after the trailer', Buffer.concat([good, Buffer.from([0])]), 'STREAM_MALFORMED'],
  ];
  for (const [name, bytes, code] of cases) t.throws(() => decodeAll(bytes), { code }, name);
});

t.test('a hostile length is refused before its data is buffered', async (t) => {
  const good = await streamBytes();
  const chunk0 = frameOffset(good, 0);
  const hostile = Buffer.from(good.subarray(0, chunk0 + CHUNK_PREFIX_BYTES));
  hostile.writeUInt32BE(0xffff_ffff, chunk0 + 13);
  t.throws(() => new SendStreamDecoder().push(hostile), { code: 'STREAM_OUT_OF_RANGE' }, 'refused from the 17-byte prefix alone');
});

t.test('headers with out-of-bound fields are refused on both ends', async (t) => {
  const header: SendStreamHeader = {
    version: SEND_STREAM_VERSION, sourceClusterId: 'c', volumeName: 'v', volumeId: 'i', snapshotName: 's', snapshotId: 'x',
    baseSnapshotId: null, baseSnapshotName: null, volumeSizeBytes: SIZE, extentSizeBytes: EXTENT, chunkSizeBytes: CHUNK, totalChunkCount: 1, firstChunk: 0, createdAtMs: 0,
  };
  t.throws(() => encodeHeader({ ...header, chunkSizeBytes: MAX_CHUNK_BYTES + 1 }), { code: 'STREAM_MALFORMED' });
  t.throws(() => encodeHeader({ ...header, volumeName: 'x'.repeat(256) }), { code: 'STREAM_MALFORMED' });
  t.throws(() => encodeHeader({ ...header, firstChunk: 2 }), { code: 'STREAM_MALFORMED' });
  t.throws(() => encodeHeader({ ...header, baseSnapshotId: 'b' }), { code: 'STREAM_MALFORMED' }, 'base id without its name');
  t.throws(() => encodeHeader({ ...header, totalChunkCount: SIZE + 1 }), { code: 'STREAM_MALFORMED' });
});

t.test('fuzz: random mutations and splits never crash and never pass unnoticed (seeded, time-bounded)', async (t) => {
  const seed = Number(process.env['SEED'] ?? 8);
  const prng = new SeededPrng(seed);
  const good = await streamBytes();
  const deadline = Date.now() + 1500;
  let runs = 0;
  let refusedCount = 0;
  while (Date.now() < deadline && runs < 3000) {
    runs += 1;
    const bytes = Buffer.from(good);
    const flips = 1 + prng.nextInt(3);
    for (let i = 0; i < flips; i++) {
      const at = prng.nextInt(bytes.length);
      bytes[at] = (bytes[at] ?? 0) ^ (1 + prng.nextInt(255));
    }
    const cut = prng.nextInt(4) === 0 ? prng.nextInt(bytes.length) : bytes.length;
    const splits = [prng.nextInt(cut + 1)].sort((a, b) => a - b);
    try {
      decodeAll(bytes.subarray(0, cut), splits);
      t.fail(`seed ${seed} run ${runs}: a mutated stream decoded without an error`);
      return;
    } catch (error) {
      if (!isPlinthError(error) || !error.code.startsWith('STREAM_')) {
        t.fail(`seed ${seed} run ${runs}: unexpected ${String(error)}`);
        return;
      }
      refusedCount += 1;
    }
  }
  t.equal(refusedCount, runs, `${runs} mutated streams refused (SEED=${seed})`);
});
