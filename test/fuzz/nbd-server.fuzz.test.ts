import { connect } from 'node:net';
import t from 'tap';
import { encodeInfoRequestData, encodeOption } from '../../blockdev/nbd/client-codec.js';
import { NBD_CMD_READ, NBD_CMD_WRITE, NBD_OPT_GO } from '../../blockdev/nbd/constants.js';
import { MemoryBlockDevice } from '../helpers/memory-block-device.js';
import { startTestServer, waitFor } from '../unit/nbd/helpers/nbd-test-server.js';
import { RawNbdClient } from '../unit/nbd/helpers/raw-nbd-client.js';
import { StaticExportProvider } from '../unit/nbd/helpers/static-export-provider.js';
import { clientFlags, fuzzSeed, mutate, Prng, randomChunks, validOption, validRequest } from './nbd-fuzz-inputs.js';

/**
 * Socket-level fuzzing of a running server over the memory device: many
 * connections send noise, damaged handshakes and damaged requests, then
 * vanish. Afterwards a real client must still be served, every opened
 * export must have been released exactly once, and nothing may have thrown
 * or rejected unhandled in this process (invariant 7). Seed printed.
 */

const SEED = fuzzSeed();
const CONNECTIONS = 400;
const CONCURRENCY = 8;
const TIME_BUDGET_MS = 8000;
const SIZE = 1 << 20;

t.comment(`NBD server fuzz seed ${SEED} (replay: NBD_FUZZ_SEED=${SEED})`);

/** Bytes one hostile connection sends. */
function hostileStream(prng: Prng): Buffer {
  switch (prng.below(4)) {
    case 0:
      return prng.bytes(prng.below(4096));
    case 1: {
      const options = Array.from({ length: 1 + prng.below(6) }, () =>
        prng.below(3) === 0 ? mutate(prng, validOption(prng)) : validOption(prng),
      );
      return Buffer.concat([clientFlags(prng), ...options]);
    }
    default: {
      const go = encodeOption(NBD_OPT_GO, encodeInfoRequestData(prng.pick(['vol1', 'vol1', 'missing']), []));
      const requests = Array.from({ length: 1 + prng.below(20) }, () =>
        prng.below(4) === 0 ? mutate(prng, validRequest(prng, SIZE)) : validRequest(prng, SIZE),
      );
      return Buffer.concat([clientFlags(prng), go, ...requests]);
    }
  }
}

/** Send the stream in random chunks, linger a moment or not, then hang up. */
function runHostileConnection(port: number, prng: Prng): Promise<void> {
  const chunks = randomChunks(prng, hostileStream(prng));
  const lingerMs = prng.below(3) === 0 ? 0 : prng.below(30);
  const halfClose = prng.below(2) === 0;
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const finish = (): void => {
      socket.destroy();
      resolve();
    };
    socket.on('error', finish);
    socket.on('close', finish);
    socket.on('data', () => undefined);
    socket.on('connect', () => {
      for (const chunk of chunks) socket.write(chunk);
      if (halfClose) socket.end();
      setTimeout(finish, lingerMs);
    });
  });
}

t.test('hostile connections cost only themselves', async (t) => {
  let unhandled = 0;
  const onUnhandled = (): void => {
    unhandled += 1;
  };
  process.on('unhandledRejection', onUnhandled);
  process.on('uncaughtException', onUnhandled);
  t.teardown(() => {
    process.off('unhandledRejection', onUnhandled);
    process.off('uncaughtException', onUnhandled);
  });

  const device = new MemoryBlockDevice({ sizeBytes: SIZE });
  const provider = new StaticExportProvider([{ name: 'vol1', device }]);
  const { server, port } = await startTestServer(t, provider, { handshakeTimeoutMs: 2000 });

  const prng = new Prng(SEED);
  const started = Date.now();
  let launched = 0;
  const workers = Array.from({ length: CONCURRENCY }, async () => {
    while (launched < CONNECTIONS && Date.now() - started < TIME_BUDGET_MS) {
      launched += 1;
      await runHostileConnection(port, prng);
    }
  });
  await Promise.all(workers);
  t.ok(launched >= CONCURRENCY, `${launched} hostile connections`);

  await waitFor(() => server.connectionCount() === 0, 'hostile connections to be cleaned up', 10_000);
  t.equal(provider.outstandingHandles(), 0, `all ${provider.opened} opened exports released`);
  t.equal(provider.doubleReleases, 0);

  const client = await RawNbdClient.open(port);
  t.teardown(() => client.destroy());
  await client.negotiate({ exportName: 'vol1', structuredReplies: true });
  const data = Buffer.alloc(4096, 0x77);
  client.request({ type: NBD_CMD_WRITE, flags: 0, handle: 1n, offset: 8192, lengthBytes: data.length }, data);
  await client.readReply();
  client.request({ type: NBD_CMD_READ, flags: 0, handle: 2n, offset: 8192, lengthBytes: data.length });
  const reply = await client.readReply();
  t.same(reply.kind === 'structured' ? reply.payload.subarray(8) : undefined, data, 'a real client is served afterwards');
  t.equal(unhandled, 0, 'no unhandled rejection or uncaught exception');
});
