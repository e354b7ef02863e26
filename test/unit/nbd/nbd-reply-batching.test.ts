import { createServer, type Server, type Socket } from 'node:net';
import pino from 'pino';
import t, { type Test } from 'tap';
import { BufferPool } from '../../../blockdev/buffer-pool.js';
import { decodeOffsetData, type TransmissionReply } from '../../../blockdev/nbd/client-codec.js';
import { NBD_CMD_DISC, NBD_CMD_READ, NBD_CMD_WRITE } from '../../../blockdev/nbd/constants.js';
import { resolveNbdLimits } from '../../../blockdev/nbd/limits.js';
import { NbdConnection } from '../../../blockdev/nbd/nbd-connection.js';
import { ProtocolError } from '../../../blockdev/nbd/protocol-error.js';
import { MemoryBlockDevice } from '../../helpers/memory-block-device.js';
import { waitFor } from './helpers/nbd-test-server.js';
import { RawNbdClient } from './helpers/raw-nbd-client.js';
import { StaticExportProvider } from './helpers/static-export-provider.js';

/**
 * Transmission replies finishing in one event-loop turn leave in one socket
 * write (nbd-connection.ts, outgoing-frames.ts): small ones copied into one
 * batch buffer, large READ replies as chunks of their own whose pooled
 * buffers are recycled once written. Driven over real loopback sockets; the
 * server socket's write() is counted.
 */

const SIZE = 8 << 20;
const BLOCK = 4096;
const LARGE_READ_BYTES = 256 * 1024;

interface Harness {
  readonly client: RawNbdClient;
  readonly provider: StaticExportProvider;
  readonly buffers: BufferPool;
  /** socket.write calls of the server side since the client entered transmission. */
  writes(): number;
  readonly finished: Promise<void>;
}

async function listen(t: Test, onSocket: (socket: Socket) => void): Promise<number> {
  const server: Server = createServer(onSocket);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return address.port;
}

async function start(t: Test, structuredReplies: boolean): Promise<Harness> {
  const device = new MemoryBlockDevice({ sizeBytes: SIZE });
  const provider = new StaticExportProvider([{ name: 'vol', device }]);
  const buffers = new BufferPool();
  let writeCount = 0;
  let counting = false;
  let finished: Promise<void> | undefined;
  const port = await listen(t, (socket) => {
    const write = socket.write.bind(socket);
    // A counting spy over the real write: every byte still goes out.
    socket.write = ((...args: Parameters<Socket['write']>): boolean => {
      if (counting) writeCount += 1;
      return write(...args);
    }) as Socket['write'];
    const connection = new NbdConnection(
      { connectionId: 'c1', limits: resolveNbdLimits() },
      { socket, exports: provider, logger: pino({ level: 'silent' }), buffers },
    );
    finished = connection.finished;
    t.teardown(() => connection.disconnect('test over'));
    connection.start();
  });
  const client = await RawNbdClient.open(port);
  t.teardown(() => client.destroy());
  await client.negotiate({ exportName: 'vol', structuredReplies });
  await waitFor(() => finished !== undefined, 'the server connection');
  counting = true;
  return {
    client,
    provider,
    buffers,
    writes: () => writeCount,
    get finished(): Promise<void> {
      return finished ?? Promise.reject(new Error('no connection'));
    },
  };
}

function dataOf(reply: TransmissionReply): Buffer {
  if (reply.kind === 'simple') return reply.data;
  const data = decodeOffsetData(reply.payload);
  if (data instanceof ProtocolError) throw data;
  return data.data;
}

function errorOf(reply: TransmissionReply): number {
  return reply.kind === 'simple' ? reply.error : reply.type >= 0x8000 ? reply.payload.readUInt32BE(0) : 0;
}

/** Every request of `count` 4 KiB writes in one client write: one TCP segment train, one server turn. */
function sendWrites(client: RawNbdClient, count: number, firstHandle: bigint): void {
  const frames: Buffer[] = [];
  for (let index = 0; index < count; index += 1) {
    const header = Buffer.alloc(28);
    header.writeUInt32BE(0x25609513, 0);
    header.writeUInt16BE(0, 4);
    header.writeUInt16BE(NBD_CMD_WRITE, 6);
    header.writeBigUInt64BE(firstHandle + BigInt(index), 8);
    header.writeBigUInt64BE(BigInt(index * BLOCK), 16);
    header.writeUInt32BE(BLOCK, 24);
    frames.push(header, Buffer.alloc(BLOCK, index + 1));
  }
  client.socket.write(Buffer.concat(frames));
}

for (const structuredReplies of [false, true]) {
  t.test(`replies of one turn leave in one write (${structuredReplies ? 'structured' : 'simple'} replies)`, async (t) => {
    const harness = await start(t, structuredReplies);
    const count = 8;
    sendWrites(harness.client, count, 1n);
    const handles: bigint[] = [];
    for (let index = 0; index < count; index += 1) {
      const reply = await harness.client.readReply();
      t.equal(errorOf(reply), 0);
      handles.push(reply.handle);
    }
    t.same([...handles].sort((a, b) => Number(a - b)), [1n, 2n, 3n, 4n, 5n, 6n, 7n, 8n], 'every request answered once');
    // The 8 requests normally arrive in one read; a split read costs one more turn, never one write per reply.
    t.ok(harness.writes() <= 2, `${count} replies in ${harness.writes()} socket write(s)`);

    // Reads after those writes see the data: copied replies carry the right bytes.
    for (let index = 0; index < count; index += 1) {
      harness.client.request({ type: NBD_CMD_READ, flags: 0, handle: 100n + BigInt(index), offset: index * BLOCK, lengthBytes: BLOCK });
    }
    const byHandle = new Map<bigint, Buffer>();
    for (let index = 0; index < count; index += 1) {
      const reply = await harness.client.readReply();
      byHandle.set(reply.handle, dataOf(reply));
    }
    for (let index = 0; index < count; index += 1) {
      t.same(byHandle.get(100n + BigInt(index)), Buffer.alloc(BLOCK, index + 1), `read ${index} returns its block`);
    }
  });
}

t.test('a large READ reply goes out as its own chunk and its pooled buffer is recycled once written', async (t) => {
  const harness = await start(t, true);
  sendWrites(harness.client, 1, 1n);
  t.equal(errorOf(await harness.client.readReply()), 0);
  const idleBefore = harness.buffers.idleBytes;
  harness.client.request({ type: NBD_CMD_READ, flags: 0, handle: 2n, offset: 0, lengthBytes: LARGE_READ_BYTES });
  harness.client.request({ type: NBD_CMD_READ, flags: 0, handle: 3n, offset: 0, lengthBytes: BLOCK });
  const replies = [await harness.client.readReply(), await harness.client.readReply()];
  const large = replies.find((reply) => reply.handle === 2n);
  const small = replies.find((reply) => reply.handle === 3n);
  if (large === undefined || small === undefined) throw new Error('a reply is missing');
  const expected = Buffer.concat([Buffer.alloc(BLOCK, 1), Buffer.alloc(LARGE_READ_BYTES - BLOCK)]);
  t.same(dataOf(large), expected, 'the large reply is intact');
  t.same(dataOf(small), Buffer.alloc(BLOCK, 1), 'the small reply behind it is intact');
  await waitFor(() => harness.buffers.idleBytes > idleBefore, 'the large reply buffer to return to the pool');
  t.pass('recycled after the write');
});

t.test('replies batched in the turn of NBD_CMD_DISC still go out before the close', async (t) => {
  const harness = await start(t, false);
  sendWrites(harness.client, 4, 1n);
  harness.client.request({ type: NBD_CMD_DISC, flags: 0, handle: 99n, offset: 0, lengthBytes: 0 });
  const handles: bigint[] = [];
  for (let index = 0; index < 4; index += 1) handles.push((await harness.client.readReply()).handle);
  t.same([...handles].sort((a, b) => Number(a - b)), [1n, 2n, 3n, 4n]);
  await harness.client.closed;
  await harness.finished;
  await waitFor(() => harness.provider.released === 1, 'the export to be released');
});
