import t from 'tap';
import { encodeFrame, FrameDecoder } from '../../../../consensus/transport/frame-codec.js';

const MAX = 1024;

function stream(payloads: Buffer[]): Buffer {
  return Buffer.concat(payloads.map((p) => encodeFrame(p, MAX)));
}

const payloads = [Buffer.from('hello'), Buffer.alloc(0), Buffer.alloc(300, 7), Buffer.from('last')];

t.test('frames survive a split at every byte offset', async (t) => {
  const bytes = stream(payloads);
  for (let split = 0; split <= bytes.length; split++) {
    const decoder = new FrameDecoder(MAX);
    const frames = [...decoder.push(bytes.subarray(0, split)), ...decoder.push(bytes.subarray(split))];
    if (frames.length !== payloads.length || !frames.every((f, i) => f.equals(payloads[i] as Buffer))) {
      t.fail(`split at ${split} broke framing`);
      return;
    }
    t.equal(decoder.bufferedBytes, 0);
  }
  t.pass('all splits decode identically');
});

t.test('frames survive a byte-at-a-time stream', async (t) => {
  const bytes = stream(payloads);
  const decoder = new FrameDecoder(MAX);
  const frames: Buffer[] = [];
  for (let i = 0; i < bytes.length; i++) frames.push(...decoder.push(bytes.subarray(i, i + 1)));
  t.same(frames, payloads);
});

t.test('an oversized length prefix is BAD_FRAME', async (t) => {
  const decoder = new FrameDecoder(MAX);
  const header = Buffer.alloc(4);
  header.writeUInt32BE(MAX + 1);
  t.throws(() => decoder.push(header), { code: 'BAD_FRAME' });
  t.throws(() => encodeFrame(Buffer.alloc(MAX + 1), MAX), { code: 'TOO_LARGE' });
  t.same(decoder.push(encodeFrame(Buffer.alloc(MAX), MAX)).map((f) => f.length), [MAX], 'exactly the limit is fine');
});
