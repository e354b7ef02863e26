import { connect } from 'node:net';
import t from 'tap';
import { decodeInitiatorPdu } from '../../blockdev/iscsi/pdu-decode.js';
import { NO_DIGESTS, type DigestSettings } from '../../blockdev/iscsi/pdu-frame.js';
import { PduReader } from '../../blockdev/iscsi/pdu-reader.js';
import { IscsiProtocolError } from '../../blockdev/iscsi/protocol-error.js';
import { decodeTextPairs } from '../../blockdev/iscsi/text-keys.js';
import { dataOut, loginRequest, logoutRequest, nopOut, scsiCommand, taskManagement, textRequest, wire } from '../unit/iscsi/helpers/initiator-pdus.js';
import { eventually, runTool, startTestTarget } from '../unit/iscsi/helpers/iscsi-test-server.js';
import { fuzzSeed, mutate, Prng, randomChunks } from './nbd-fuzz-inputs.js';

/**
 * Issue 5 "a fuzz test for the PDU codec": mutated valid initiator PDUs and
 * noise, split at random, through the PDU reader (with and without digests),
 * the PDU decoders and the text-key decoder. The only allowed failures are a
 * returned IscsiProtocolError or a reader result saying the stream is lost;
 * anything thrown is a bug. Then the same inputs against a running server:
 * it must keep serving a real initiator afterwards (invariant 7). Bounded by
 * iterations and time; the seed is printed (replay with NBD_FUZZ_SEED=...).
 */

const SEED = fuzzSeed();
const TIME_BUDGET_MS = 3000;
const MAX_ITERATIONS = 5000;
const CONNECTIONS = 150;

t.comment(`iSCSI codec fuzz seed ${SEED} (replay: NBD_FUZZ_SEED=${SEED})`);

const KEYS = ['InitiatorName', 'TargetName', 'SessionType', 'AuthMethod', 'HeaderDigest', 'MaxRecvDataSegmentLength', 'SendTargets', 'X-weird', ''];
const VALUES = ['iqn.2026-11.io.plinth:vol1', 'None', 'CRC32C,None', 'Normal', 'Discovery', '8192', 'All', '', 'x'.repeat(300)];

function pairs(prng: Prng): Array<{ key: string; value: string }> {
  return Array.from({ length: prng.below(5) }, () => ({ key: prng.pick(KEYS), value: prng.pick(VALUES) }));
}

/** One well-formed initiator PDU of any kind, framed with `digests`. */
function validPdu(prng: Prng, digests: DigestSettings): Buffer {
  const itt = prng.below(1000);
  const cmdSN = prng.below(1000);
  switch (prng.below(7)) {
    case 0:
      return wire(loginRequest({ transit: prng.below(2) === 0, csg: prng.below(4), nsg: prng.below(4), pairs: pairs(prng) }), digests);
    case 1: {
      const write = prng.below(2) === 0;
      const cdb = Buffer.from([write ? 0x2a : 0x28, 0, 0, 0, 0, prng.below(256), 0, 0, 1 + prng.below(8), 0]);
      const data = write && prng.below(2) === 0 ? prng.bytes(512 * (1 + prng.below(2))) : undefined;
      return wire(scsiCommand({ itt, cmdSN, edtl: 512 * prng.below(9), read: !write, write, cdb, ...(data === undefined ? {} : { data }) }), digests);
    }
    case 2:
      return wire(dataOut({ final: prng.below(2) === 0, itt, ttt: prng.below(10), dataSN: prng.below(4), bufferOffset: 512 * prng.below(8), data: prng.bytes(prng.below(1024)) }), digests);
    case 3:
      return wire(nopOut({ immediate: prng.below(2) === 0, itt, cmdSN, data: prng.bytes(prng.below(64)) }), digests);
    case 4:
      return wire(taskManagement({ fn: 1 + prng.below(8), itt, cmdSN, referencedTaskTag: prng.below(1000) }), digests);
    case 5:
      return wire(textRequest({ itt, cmdSN, pairs: pairs(prng) }), digests);
    default:
      return wire(logoutRequest({ itt, cmdSN, reason: prng.below(4) }), digests);
  }
}

function stream(prng: Prng, digests: DigestSettings): Buffer {
  const parts = Array.from({ length: 1 + prng.below(8) }, () => {
    const pdu = validPdu(prng, digests);
    return prng.below(4) === 0 ? mutate(prng, pdu) : pdu;
  });
  if (prng.below(8) === 0) parts.push(prng.bytes(prng.below(2000)));
  return Buffer.concat(parts);
}

t.test('reader and decoders: an IscsiProtocolError or a lost stream, never a throw', async (t) => {
  const prng = new Prng(SEED);
  const started = Date.now();
  let iterations = 0;
  let pdus = 0;
  let refusals = 0;
  while (iterations < MAX_ITERATIONS && Date.now() - started < TIME_BUDGET_MS) {
    iterations += 1;
    const digests: DigestSettings = prng.below(3) === 0 ? { header: prng.below(2) === 0, data: prng.below(2) === 0 } : NO_DIGESTS;
    const reader = new PduReader({ maxDataSegmentBytes: 8192 });
    reader.setDigests(digests);
    let lost = false;
    for (const chunk of randomChunks(prng, stream(prng, digests))) {
      reader.push(chunk);
      for (let result = reader.next(); result !== undefined && !lost; result = reader.next()) {
        if (result.kind === 'fatal') {
          lost = true;
          if (!(result.error instanceof IscsiProtocolError)) t.fail(`a fatal result without an IscsiProtocolError (seed ${SEED})`);
          break;
        }
        if (result.kind === 'data-digest-error') {
          refusals += 1;
          continue;
        }
        pdus += 1;
        const decoded = decodeInitiatorPdu(result.pdu);
        if (decoded instanceof IscsiProtocolError) refusals += 1;
        if (result.pdu.data.length > 0 && decodeTextPairs(result.pdu.data) instanceof IscsiProtocolError) refusals += 1;
      }
      if (lost) break;
    }
  }
  t.ok(iterations > 100, `${iterations} streams fuzzed`);
  t.ok(pdus > 0 && refusals > 0, `${pdus} PDUs decoded, ${refusals} refused cleanly`);
});

t.test('a running target survives hostile connections and still serves an initiator', async (t) => {
  const target = await startTestTarget(t);
  const prng = new Prng(SEED ^ 0x5a5a5a5a);
  const started = Date.now();
  let sent = 0;
  for (let index = 0; index < CONNECTIONS && Date.now() - started < TIME_BUDGET_MS * 2; index += 1) {
    const chunks = randomChunks(prng, stream(prng, NO_DIGESTS));
    await new Promise<void>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port: target.port });
      const done = (): void => {
        socket.destroy();
        resolve();
      };
      socket.on('error', done);
      socket.on('close', done);
      socket.on('connect', () => {
        for (const chunk of chunks) socket.write(chunk);
        setTimeout(done, prng.below(20));
      });
    });
    sent += 1;
  }
  t.ok(sent > 20, `${sent} hostile connections`);
  const inquiry = await runTool('iscsi-inq', [target.url('vol1')]);
  t.equal(inquiry.code, 0, `a real initiator is still served: ${inquiry.stderr.trim()}`);
  t.ok(await eventually(() => target.server.connectionCount() === 0, 5000), `every hung-up connection was cleaned up (${target.server.connectionCount()} left)`);
});
