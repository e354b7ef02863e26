import pino from 'pino';
import t from 'tap';
import { decodeOptionReply, encodeInfoRequestData, encodeOption } from '../../blockdev/nbd/client-codec.js';
import { NBD_OPT_EXPORT_NAME, NBD_OPT_GO } from '../../blockdev/nbd/constants.js';
import { FrameReader } from '../../blockdev/nbd/frame-reader.js';
import { Handshake } from '../../blockdev/nbd/handshake.js';
import {
  decodeClientFlags,
  decodeExportNameData,
  decodeInfoRequestData,
  decodeMetaContextData,
  decodeOptionHeader,
} from '../../blockdev/nbd/handshake-codec.js';
import { resolveNbdLimits } from '../../blockdev/nbd/limits.js';
import { ProtocolError } from '../../blockdev/nbd/protocol-error.js';
import { validateRequest } from '../../blockdev/nbd/request-validation.js';
import { decodeRequestHeader } from '../../blockdev/nbd/transmission-codec.js';
import { MemoryBlockDevice } from '../helpers/memory-block-device.js';
import { StaticExportProvider } from '../unit/nbd/helpers/static-export-provider.js';
import { clientFlags, fuzzSeed, mutate, Prng, randomChunks, validOption, validRequest } from './nbd-fuzz-inputs.js';

/**
 * Codec fuzzing without sockets: mutated valid messages and noise through
 * the frame reader, the option decoders, the handshake state machine and
 * request validation. The only allowed failure is a returned ProtocolError;
 * anything thrown is a bug. Bounded by iterations and time; the seed is
 * printed (replay with NBD_FUZZ_SEED=<seed>).
 */

const SEED = fuzzSeed();
const TIME_BUDGET_MS = 3000;
const MAX_ITERATIONS = 5000;
const SIZE = 1 << 20;

t.comment(`NBD codec fuzz seed ${SEED} (replay: NBD_FUZZ_SEED=${SEED})`);

function isMessageOrProtocolError(value: unknown): boolean {
  return (
    value === undefined ||
    value instanceof ProtocolError ||
    typeof value === 'string' ||
    (typeof value === 'object' && value !== null)
  );
}

/** A conversation: flags, options (some mutated), then requests (some mutated). */
function conversation(prng: Prng): Buffer {
  const parts: Buffer[] = [clientFlags(prng)];
  for (let count = prng.below(6); count > 0; count -= 1) {
    const option = validOption(prng);
    parts.push(prng.below(6) === 0 ? mutate(prng, option) : option);
  }
  if (prng.below(10) < 7) {
    // Most conversations reach transmission, so requests get fuzzed too.
    parts.push(encodeOption(NBD_OPT_GO, encodeInfoRequestData('vol1', [])));
  }
  for (let count = prng.below(12); count > 0; count -= 1) {
    const request = validRequest(prng, SIZE);
    parts.push(prng.below(6) === 0 ? mutate(prng, request) : request);
  }
  if (prng.below(10) === 0) parts.push(prng.bytes(prng.below(2000)));
  return Buffer.concat(parts);
}

t.test('frame reader and decoders: only ProtocolError, never a throw', async (t) => {
  const prng = new Prng(SEED);
  const limits = resolveNbdLimits({ maxOptionDataBytes: 4096, maxPayloadBytes: 65536, maxDiscardedWriteBytes: 131072 });
  const context = {
    sizeBytes: SIZE,
    transmissionFlags: 0xffff,
    blockSize: { minimumBytes: 1, preferredBytes: 4096, maximumBytes: 65536 },
    blockStatusContextId: 1,
  };
  const started = Date.now();
  let iterations = 0;
  let messages = 0;
  let protocolErrors = 0;
  while (iterations < MAX_ITERATIONS && Date.now() - started < TIME_BUDGET_MS) {
    iterations += 1;
    const reader = new FrameReader(limits);
    feeding: for (const chunk of randomChunks(prng, conversation(prng))) {
      reader.push(chunk);
      for (;;) {
        const result = reader.next();
        if (result === undefined) break;
        if (result instanceof ProtocolError) {
          protocolErrors += 1;
          break feeding;
        }
        messages += 1;
        if (result.kind === 'option') {
          for (const decoded of [
            decodeInfoRequestData(result.data),
            decodeMetaContextData(result.data),
            decodeExportNameData(result.data),
          ]) {
            if (!isMessageOrProtocolError(decoded)) t.fail('decoder returned something odd');
          }
          if (result.option === NBD_OPT_GO || result.option === NBD_OPT_EXPORT_NAME || prng.below(8) === 0) {
            reader.startTransmission();
          }
        } else if (result.kind === 'request') {
          validateRequest(result.header, context, result.payloadDiscarded);
        }
      }
    }
    const noise = prng.bytes(prng.below(64));
    for (const decoded of [decodeClientFlags(noise), decodeOptionHeader(noise), decodeRequestHeader(noise)]) {
      if (!isMessageOrProtocolError(decoded)) t.fail('decoder returned something odd');
    }
  }
  t.ok(iterations > 100, `${iterations} conversations, ${messages} messages, ${protocolErrors} protocol errors`);
  t.ok(messages > 0 && protocolErrors > 0, 'the fuzzer reached both outcomes');
});

t.test('handshake state machine: every option, however damaged, gets well-formed replies', async (t) => {
  const prng = new Prng(SEED ^ 0x5bd1e995);
  const provider = new StaticExportProvider([
    { name: 'vol1', device: new MemoryBlockDevice({ sizeBytes: SIZE }) },
    { name: 'vol1@snap', device: new MemoryBlockDevice({ sizeBytes: SIZE, capabilities: { readOnly: true } }) },
  ]);
  const limits = resolveNbdLimits({ maxOptionsPerHandshake: 64 });
  const logger = pino({ level: 'silent' });
  const client = { protocol: 'nbd' as const, connectionId: 'fuzz', remoteAddress: '127.0.0.1:0' };
  const started = Date.now();
  let options = 0;
  while (options < MAX_ITERATIONS && Date.now() - started < TIME_BUDGET_MS) {
    const handshake = new Handshake({ limits, client }, { exports: provider, logger });
    handshake.onClientFlags({ fixedNewstyle: true, noZeroes: prng.below(2) === 0 });
    for (let step = 0; step < 20; step += 1) {
      options += 1;
      const encoded = prng.below(3) === 0 ? mutate(prng, validOption(prng)) : validOption(prng);
      const header = decodeOptionHeader(encoded.subarray(0, 16));
      if (header instanceof ProtocolError) continue;
      const outcome = await handshake.onOption(header.option, encoded.subarray(16));
      if (outcome.kind === 'transmission') {
        outcome.negotiated.handle.release();
        break;
      }
      for (const reply of outcome.replies) {
        const decoded = decodeOptionReply(reply);
        if (decoded === undefined || decoded instanceof ProtocolError || decoded.totalBytes !== reply.length) {
          t.fail(`malformed reply to option ${header.option}`);
        }
      }
      if (outcome.kind === 'close') break;
    }
  }
  t.ok(options > 100, `${options} options handled`);
  t.equal(provider.outstandingHandles(), 0, 'every opened export was handed back');
});
