import t from 'tap';
import { decodeReply, decodeRequest, encodeReply, encodeRequest, FrameSplitter } from '../../../blockdev/replica/replica-codec.js';
import {
  decodeHelloChallenge,
  decodeHelloGreeting,
  decodeRegionList,
  decodeStatusRuns,
  encodeHelloChallenge,
  encodeHelloGreeting,
  encodeRegionList,
  encodeStatusRuns,
} from '../../../blockdev/replica/replica-payloads.js';
import { Opcode, type ReplicaRequest, ReplicaProtocolError, RequestFlag, Status } from '../../../blockdev/replica/replica-protocol.js';

/** Pure codec: round trips, a stream split at every byte, and refusals as typed errors. */

const requests: ReplicaRequest[] = [
  { opcode: Opcode.HELLO, flags: 0, requestId: 1, generation: 0, offset: 0, lengthBytes: 0, volumeId: '', payload: Buffer.alloc(40, 7) },
  { opcode: Opcode.OPEN, flags: 0, requestId: 2, generation: 3, offset: 0, lengthBytes: 2 ** 40, volumeId: 'vol-ü', payload: Buffer.alloc(0) },
  { opcode: Opcode.WRITE, flags: RequestFlag.FUA, requestId: 3, generation: 3, offset: 2 ** 50, lengthBytes: 5, volumeId: 'v', payload: Buffer.from('hello') },
  { opcode: Opcode.READ, flags: 0, requestId: Number.MAX_SAFE_INTEGER, generation: Number.MAX_SAFE_INTEGER, offset: 4096, lengthBytes: 512, volumeId: 'v', payload: Buffer.alloc(0) },
  { opcode: Opcode.WRITE_ZEROES, flags: RequestFlag.NO_HOLE | RequestFlag.FAST_ZERO, requestId: 5, generation: 1, offset: 0, lengthBytes: 1, volumeId: 'v', payload: Buffer.alloc(0) },
  { opcode: Opcode.GET_DIRTY, flags: 0, requestId: 6, generation: 1, offset: 0, lengthBytes: 8 << 20, volumeId: 'v', payload: Buffer.alloc(8, 1) },
  { opcode: Opcode.PING, flags: 0, requestId: 7, generation: 0, offset: 0, lengthBytes: 0, volumeId: '', payload: Buffer.alloc(0) },
];

function fixture(index: number): ReplicaRequest {
  const request = requests[index];
  if (request === undefined) throw new Error(`no fixture request ${index}`);
  return request;
}

function body(frame: Buffer): Buffer {
  return frame.subarray(4);
}

t.test('requests and replies round-trip', async (t) => {
  for (const request of requests) {
    const decoded = decodeRequest(body(encodeRequest(request)));
    t.same(decoded, request, `opcode ${request.opcode}`);
  }
  const reply = { requestId: 99, status: Status.FENCED, payload: Buffer.from('fenced') };
  t.same(decodeReply(body(encodeReply(reply))), reply);
});

t.test('a stream split at every byte yields the same frames', async (t) => {
  const stream = Buffer.concat(requests.map(encodeRequest));
  for (let cut = 0; cut <= stream.length; cut += 1) {
    const splitter = new FrameSplitter(1024);
    const first = splitter.push(stream.subarray(0, cut));
    const second = splitter.push(stream.subarray(cut));
    if (first instanceof ReplicaProtocolError || second instanceof ReplicaProtocolError) {
      t.fail(`cut at ${cut} failed`);
      return;
    }
    const decoded = [...first, ...second].map(decodeRequest);
    if (JSON.stringify(decoded) !== JSON.stringify(requests)) {
      t.fail(`cut at ${cut} changed the frames`);
      return;
    }
  }
  t.pass('every cut decodes identically');
  const splitter = new FrameSplitter(1024);
  const byByte = [...stream].flatMap((byte) => {
    const frames = splitter.push(Buffer.from([byte]));
    return frames instanceof ReplicaProtocolError ? [] : frames;
  });
  t.equal(byByte.length, requests.length, 'one byte at a time');
});

t.test('refusals are typed protocol errors', async (t) => {
  const good = body(encodeRequest(fixture(2)));
  const corrupt = (at: number, value: number): Buffer => {
    const copy = Buffer.from(good);
    copy[at] = value;
    return copy;
  };
  t.match(decodeRequest(corrupt(0, 0)), { reason: 'BAD_MAGIC', code: 'PROTOCOL_ERROR' });
  t.match(decodeRequest(corrupt(4, 9)), { reason: 'BAD_VERSION' });
  t.match(decodeRequest(corrupt(5, 200)), { reason: 'BAD_OPCODE' });
  t.match(decodeRequest(corrupt(6, 0x80)), { reason: 'BAD_FLAGS' });
  t.match(decodeRequest(corrupt(8, 0xff)), { reason: 'BAD_NUMBER' }, 'request id above 2^53');
  t.match(decodeRequest(good.subarray(0, good.length - 1)), { reason: 'BAD_LENGTH' }, 'WRITE data shorter than its length');
  t.match(decodeRequest(good.subarray(0, 20)), { reason: 'TRUNCATED' });
  const noVolume = encodeRequest({ ...fixture(3), volumeId: '' });
  t.match(decodeRequest(body(noVolume)), { reason: 'BAD_STRING' });
  const badUtf8 = Buffer.from(body(encodeRequest({ ...fixture(3), volumeId: 'ab' })));
  badUtf8[41] = 0xc3;
  t.match(decodeRequest(badUtf8), { reason: 'BAD_STRING' });
  const splitter = new FrameSplitter(64);
  t.match(splitter.push(Buffer.from([0, 0, 1, 0])), { reason: 'FRAME_TOO_LARGE' });
  t.match(splitter.push(Buffer.alloc(1)), { reason: 'FRAME_TOO_LARGE' }, 'the failure is sticky');
  t.match(decodeReply(Buffer.alloc(5)), { reason: 'TRUNCATED' });
  const badStatus = body(encodeReply({ requestId: 1, status: Status.OK, payload: Buffer.alloc(0) }));
  badStatus[12] = 77;
  t.match(decodeReply(badStatus), { reason: 'BAD_STATUS' });
});

t.test('op payloads round-trip and refuse bad lengths', async (t) => {
  const greeting = { nodeId: 'node-a', nonce: Buffer.alloc(32, 1) };
  t.same(decodeHelloGreeting(encodeHelloGreeting(greeting)), greeting);
  const challenge = { nodeId: 'node-b', nonce: Buffer.alloc(32, 2), proof: Buffer.alloc(32, 3) };
  t.same(decodeHelloChallenge(encodeHelloChallenge(challenge)), challenge);
  t.match(decodeHelloGreeting(Buffer.alloc(32)), { reason: 'BAD_LENGTH' });
  const runs = [
    { lengthBytes: 4096, hole: true, zero: true },
    { lengthBytes: 2 ** 45, hole: false, zero: false },
  ];
  t.same(decodeStatusRuns(encodeStatusRuns(runs)), runs);
  t.match(decodeStatusRuns(encodeStatusRuns(runs).subarray(0, 10)), { reason: 'BAD_LENGTH' });
  const list = { markerSeq: 42, complete: true, regionSizeBytes: 4 << 20, regions: [0, 3, 70000] };
  t.same(decodeRegionList(encodeRegionList(list)), { ...list, uncleanRestart: false });
  const afterCrash = { ...list, complete: false, uncleanRestart: true };
  t.same(decodeRegionList(encodeRegionList(afterCrash)), afterCrash, 'the unclean-restart flag travels beside complete');
  const badFlags = encodeRegionList(list);
  badFlags.writeUInt8(4, 8);
  t.match(decodeRegionList(badFlags), { reason: 'BAD_NUMBER' }, 'unknown flag bits are refused');
  t.match(decodeRegionList(encodeRegionList(list).subarray(0, 20)), { reason: 'BAD_LENGTH' });
});
