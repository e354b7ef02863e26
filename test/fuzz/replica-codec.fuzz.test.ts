import { connect } from 'node:net';
import t from 'tap';
import { decodeReply, decodeRequest, encodeReply, encodeRequest, FrameSplitter } from '../../blockdev/replica/replica-codec.js';
import { decodeHelloChallenge, decodeHelloGreeting, decodeRegionList, decodeStatusRuns } from '../../blockdev/replica/replica-payloads.js';
import { Opcode, type ReplicaRequest, ReplicaProtocolError, Status } from '../../blockdev/replica/replica-protocol.js';
import { connectReplica, makeTempDir, pattern, startReplicaNode } from '../unit/replica/replica-fixture.js';

/**
 * Replication frames fuzzed: mutated valid frames and noise through the
 * splitter and every decoder (only a returned ReplicaProtocolError is allowed;
 * anything thrown is a bug), then noise at a live server while a good client
 * keeps working. Bounded by iterations and time; replay with
 * REPLICA_FUZZ_SEED=<seed>.
 */

const SEED = Number(process.env['REPLICA_FUZZ_SEED'] ?? Date.now() % 2 ** 31);
const TIME_BUDGET_MS = 2500;
const MAX_ITERATIONS = 20000;
t.comment(`replica codec fuzz seed ${SEED} (replay: REPLICA_FUZZ_SEED=${SEED})`);

/** xorshift32: small, seeded, deterministic. */
function makePrng(seed: number): (limit: number) => number {
  let state = seed >>> 0 || 1;
  return (limit) => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state % limit;
  };
}

const valid: ReplicaRequest[] = [
  { opcode: Opcode.WRITE, flags: 1, requestId: 1, generation: 2, offset: 4096, lengthBytes: 16, volumeId: 'vol-1', payload: Buffer.alloc(16, 9) },
  { opcode: Opcode.READ, flags: 0, requestId: 2, generation: 2, offset: 0, lengthBytes: 512, volumeId: 'vol-1', payload: Buffer.alloc(0) },
  { opcode: Opcode.GET_DIRTY, flags: 0, requestId: 3, generation: 2, offset: 0, lengthBytes: 1 << 22, volumeId: 'vol-1', payload: Buffer.alloc(8) },
  { opcode: Opcode.HELLO, flags: 0, requestId: 4, generation: 0, offset: 0, lengthBytes: 0, volumeId: '', payload: Buffer.alloc(38, 1) },
];

function mutate(frame: Buffer, random: (limit: number) => number): Buffer {
  const copy = Buffer.from(frame);
  switch (random(4)) {
    case 0:
      for (let flips = 1 + random(4); flips > 0; flips -= 1) copy[random(copy.length)] = random(256);
      return copy;
    case 1:
      return copy.subarray(0, random(copy.length + 1));
    case 2:
      return Buffer.concat([copy, Buffer.from(Array.from({ length: random(40) }, () => random(256)))]);
    default:
      return Buffer.from(Array.from({ length: random(80) }, () => random(256)));
  }
}

function allowed(value: unknown): boolean {
  return value instanceof ReplicaProtocolError || (typeof value === 'object' && value !== null);
}

t.test('decoders only ever return values or ReplicaProtocolError', async (t) => {
  const random = makePrng(SEED);
  const started = Date.now();
  let iterations = 0;
  for (; iterations < MAX_ITERATIONS && Date.now() - started < TIME_BUDGET_MS; iterations += 1) {
    const base = valid[random(valid.length)];
    if (base === undefined) continue;
    const requestFrame = mutate(encodeRequest(base), random);
    const replyFrame = mutate(encodeReply({ requestId: iterations, status: Status.OK, payload: Buffer.alloc(random(30), 5) }), random);
    for (const frame of [requestFrame, replyFrame]) {
      const splitter = new FrameSplitter(1024);
      const bodies = splitter.push(frame);
      if (!allowed(bodies)) {
        t.fail(`splitter returned ${String(bodies)}`);
        return;
      }
      const outcomes = [decodeRequest(frame), decodeReply(frame), decodeHelloGreeting(frame), decodeHelloChallenge(frame), decodeRegionList(frame), decodeStatusRuns(frame)];
      if (!Array.isArray(bodies)) continue;
      for (const body of bodies) outcomes.push(decodeRequest(body), decodeReply(body));
      const bad = outcomes.find((outcome) => !allowed(outcome));
      if (bad !== undefined) {
        t.fail(`iteration ${iterations}: unexpected outcome ${String(bad)}`);
        return;
      }
    }
  }
  t.ok(iterations > 100, `ran ${iterations} iterations without a throw`);
});

t.test('noise at a live server costs only the noisy connections', async (t) => {
  const node = await startReplicaNode(t, await makeTempDir(t));
  const good = await connectReplica(t, node.server);
  await good.write(0, pattern(4096, 1));
  const random = makePrng(SEED ^ 0x5a5a5a5a);
  const { port } = node.server.address();
  for (let round = 0; round < 20; round += 1) {
    const base = valid[random(valid.length)] ?? valid[0];
    if (base === undefined) break;
    const noise = Buffer.concat([mutate(encodeRequest(base), random), mutate(encodeRequest(base), random)]);
    await new Promise<void>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port }, () => {
        socket.write(noise);
        // Noise that happens to be a partial frame would wait for the handshake timeout: cut it ourselves.
        setTimeout(() => socket.destroy(), 50);
      });
      socket.on('error', () => undefined); // reset by the server: expected
      socket.on('close', () => resolve());
    });
  }
  const back = Buffer.alloc(4096);
  await good.read(0, back);
  t.ok(back.equals(pattern(4096, 1)), 'the good client still reads its data');
  t.equal(node.server.connectionCount() >= 1, true, 'the server is still serving');
});
