import pino from 'pino';
import t from 'tap';
import {
  decodeBlockStatusPayload,
  decodeExportNameReply,
  decodeOffsetData,
  encodeInfoRequestData,
  type TransmissionReply,
} from '../../../blockdev/nbd/client-codec.js';
import {
  NBD_CMD_BLOCK_STATUS,
  NBD_CMD_DISC,
  NBD_CMD_FLUSH,
  NBD_CMD_READ,
  NBD_CMD_WRITE,
  NBD_ESHUTDOWN,
  NBD_FLAG_C_FIXED_NEWSTYLE,
  NBD_FLAG_C_NO_ZEROES,
  NBD_OPT_EXPORT_NAME,
  NBD_OPT_GO,
  NBD_REP_ERR_UNKNOWN,
  NBD_STATE_HOLE,
} from '../../../blockdev/nbd/constants.js';
import { startNbdServer } from '../../../blockdev/nbd/nbd-server.js';
import { ProtocolError } from '../../../blockdev/nbd/protocol-error.js';
import { MemoryBlockDevice } from '../../helpers/memory-block-device.js';
import { GatedBlockDevice } from './helpers/gated-block-device.js';
import { startTestServer, waitFor } from './helpers/nbd-test-server.js';
import { RawNbdClient } from './helpers/raw-nbd-client.js';
import { StaticExportProvider } from './helpers/static-export-provider.js';

/** The server over real loopback sockets, driven byte by byte: protocol flow and lifecycle. */

const SIZE = 4 << 20;

function payloadOf(reply: TransmissionReply): Buffer {
  if (reply.kind === 'simple') return reply.data;
  const data = decodeOffsetData(reply.payload);
  if (data instanceof ProtocolError) throw data;
  return data.data;
}

function errorOf(reply: TransmissionReply): number {
  return reply.kind === 'simple' ? reply.error : reply.type >= 0x8000 ? (reply.payload.readUInt32BE(0)) : 0;
}

t.test('a client negotiates, writes, reads, queries status and disconnects', async (t) => {
  const provider = new StaticExportProvider([{ name: 'vol1', device: new MemoryBlockDevice({ sizeBytes: SIZE }) }]);
  const { server, port } = await startTestServer(t, provider);
  const client = await RawNbdClient.open(port);
  t.teardown(() => client.destroy());
  const negotiated = await client.negotiate({ exportName: 'vol1', structuredReplies: true, blockStatus: true });
  t.equal(negotiated.sizeBytes, SIZE);
  t.equal(server.connectionCount(), 1);

  const data = Buffer.alloc(65536, 0xc3);
  client.request({ type: NBD_CMD_WRITE, flags: 0, handle: 1n, offset: 65536, lengthBytes: data.length }, data);
  t.equal(errorOf(await client.readReply()), 0);
  client.request({ type: NBD_CMD_READ, flags: 0, handle: 2n, offset: 65536, lengthBytes: data.length });
  t.same(payloadOf(await client.readReply()), data);
  client.request({ type: NBD_CMD_BLOCK_STATUS, flags: 0, handle: 3n, offset: 0, lengthBytes: 3 * 65536 });
  const status = await client.readReply();
  const extents = decodeBlockStatusPayload(status.kind === 'structured' ? status.payload : Buffer.alloc(0));
  if (extents instanceof ProtocolError) throw extents;
  t.same(extents.descriptors.map((d) => d.flags & NBD_STATE_HOLE), [NBD_STATE_HOLE, 0, NBD_STATE_HOLE]);

  client.request({ type: NBD_CMD_DISC, flags: 0, handle: 4n, offset: 0, lengthBytes: 0 });
  await client.closed;
  await waitFor(() => provider.released === 1, 'the export to be released');
  t.equal(provider.doubleReleases, 0);
  await waitFor(() => server.connectionCount() === 0, 'the connection to be forgotten');
});

t.test('EXPORT_NAME with simple replies', async (t) => {
  const provider = new StaticExportProvider([{ name: 'vol1', device: new MemoryBlockDevice({ sizeBytes: SIZE }) }]);
  const { port } = await startTestServer(t, provider);
  const client = await RawNbdClient.open(port, NBD_FLAG_C_FIXED_NEWSTYLE);
  t.teardown(() => client.destroy());
  client.sendOption(NBD_OPT_EXPORT_NAME, Buffer.from('vol1'));
  const reply = decodeExportNameReply(await client.readExactly(134));
  t.equal(reply instanceof ProtocolError ? -1 : reply.sizeBytes, SIZE);
  client.request({ type: NBD_CMD_READ, flags: 0, handle: 7n, offset: 0, lengthBytes: 512 });
  const read = await client.readReply();
  t.equal(read.kind, 'simple');
  t.same(payloadOf(read), Buffer.alloc(512));
});

t.test('unknown exports: GO errors and negotiation continues; EXPORT_NAME closes', async (t) => {
  const provider = new StaticExportProvider([{ name: 'vol1', device: new MemoryBlockDevice({ sizeBytes: SIZE }) }]);
  const { port } = await startTestServer(t, provider);
  const client = await RawNbdClient.open(port);
  t.teardown(() => client.destroy());
  client.sendOption(NBD_OPT_GO, encodeInfoRequestData('missing', []));
  t.equal((await client.readOptionReply()).replyType, NBD_REP_ERR_UNKNOWN);
  await client.negotiate({ exportName: 'vol1' });

  const other = await RawNbdClient.open(port, NBD_FLAG_C_FIXED_NEWSTYLE | NBD_FLAG_C_NO_ZEROES);
  t.teardown(() => other.destroy());
  other.sendOption(NBD_OPT_EXPORT_NAME, Buffer.from('missing'));
  await other.closed;
  t.equal(other.pendingBytes, 0, 'nothing is sent before closing');
  t.equal(provider.opened, 1);
});

t.test('replies are sent as requests complete, out of order', async (t) => {
  const gated = new GatedBlockDevice(new MemoryBlockDevice({ sizeBytes: SIZE }));
  const provider = new StaticExportProvider([{ name: 'vol1', device: gated }]);
  const { port } = await startTestServer(t, provider);
  const client = await RawNbdClient.open(port);
  t.teardown(() => client.destroy());
  await client.negotiate({ exportName: 'vol1', structuredReplies: true });
  client.request({ type: NBD_CMD_FLUSH, flags: 0, handle: 1n, offset: 0, lengthBytes: 0 });
  client.request({ type: NBD_CMD_READ, flags: 0, handle: 2n, offset: 0, lengthBytes: 4096 });
  await waitFor(() => gated.waiting === 2, 'both requests to reach the device');
  gated.release();
  const handles = [(await client.readReply()).handle, (await client.readReply()).handle];
  t.same(handles.sort(), [1n, 2n]);

  gated.hold();
  client.request({ type: NBD_CMD_FLUSH, flags: 0, handle: 3n, offset: 0, lengthBytes: 0 });
  client.request({ type: NBD_CMD_READ, flags: 0, handle: 4n, offset: 0, lengthBytes: 4096 });
  await waitFor(() => gated.waiting === 2, 'both requests to be held');
  // Let only the READ (the second held call) through: its reply must overtake the FLUSH.
  gated.releaseAt(1);
  t.equal((await client.readReply()).handle, 4n);
  gated.release();
  t.equal((await client.readReply()).handle, 3n);
});

t.test('a client that leaves mid-request: I/O completes, then the handle is released', async (t) => {
  const gated = new GatedBlockDevice(new MemoryBlockDevice({ sizeBytes: SIZE }));
  const provider = new StaticExportProvider([{ name: 'vol1', device: gated }]);
  const { server, port } = await startTestServer(t, provider);
  const client = await RawNbdClient.open(port);
  await client.negotiate({ exportName: 'vol1' });
  client.request({ type: NBD_CMD_WRITE, flags: 0, handle: 1n, offset: 0, lengthBytes: 4096 }, Buffer.alloc(4096, 1));
  await waitFor(() => gated.waiting === 1, 'the write to be in flight');
  // A reset, not a FIN: the server's socket closes at once while the write is still held.
  client.socket.resetAndDestroy();
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.equal(server.connectionCount(), 1, 'the connection stays tracked for its I/O');
  t.equal(provider.released, 0, 'not released while the write is in flight');
  gated.release();
  await waitFor(() => provider.released === 1, 'release after the write completes');
  await waitFor(() => server.connectionCount() === 0, 'the connection to be forgotten');
  t.equal(provider.doubleReleases, 0);
});

t.test('a connection dropped while its export is being opened still releases it', async (t) => {
  let openNow: () => void = () => undefined;
  const provider = new StaticExportProvider([{ name: 'vol1', device: new MemoryBlockDevice({ sizeBytes: SIZE }) }]);
  provider.holdOpens(new Promise((resolve) => { openNow = resolve; }));
  // The handshake deadline drops the connection while openExport is still pending.
  const { server, port } = await startTestServer(t, provider, { handshakeTimeoutMs: 100 });
  const client = await RawNbdClient.open(port);
  t.teardown(() => client.destroy());
  client.sendOption(NBD_OPT_GO, encodeInfoRequestData('vol1', []));
  await client.closed;
  // Let the server see its own socket close before the open completes.
  await new Promise((resolve) => setTimeout(resolve, 30));
  t.equal(server.connectionCount(), 1, 'still tracked: its open is pending');
  openNow();
  await waitFor(() => provider.opened === 1 && provider.released === 1, 'the late handle to be released');
  await waitFor(() => server.connectionCount() === 0, 'the connection to be forgotten');
  t.equal(provider.doubleReleases, 0);
});

t.test('disconnectExport drops only the connections of that export', async (t) => {
  const provider = new StaticExportProvider([
    { name: 'vol1', device: new MemoryBlockDevice({ sizeBytes: SIZE }) },
    { name: 'vol2', device: new MemoryBlockDevice({ sizeBytes: SIZE }) },
  ]);
  const { server, port } = await startTestServer(t, provider);
  const clients = await Promise.all([RawNbdClient.open(port), RawNbdClient.open(port), RawNbdClient.open(port)]);
  t.teardown(() => clients.forEach((client) => client.destroy()));
  const [a, b, c] = clients;
  if (a === undefined || b === undefined || c === undefined) throw new Error('three clients');
  await a.negotiate({ exportName: 'vol1' });
  await b.negotiate({ exportName: 'vol1' });
  await c.negotiate({ exportName: 'vol2' });
  t.equal(server.disconnectExport('vol1'), 2);
  await Promise.all([a.closed, b.closed]);
  await waitFor(() => provider.released === 2, 'both vol1 handles released');
  c.request({ type: NBD_CMD_READ, flags: 0, handle: 1n, offset: 0, lengthBytes: 512 });
  t.same(payloadOf(await c.readReply()), Buffer.alloc(512), 'vol2 keeps working');
});

t.test('close() lets in-flight requests finish, flushes, closes and releases', async (t) => {
  const memory = new MemoryBlockDevice({ sizeBytes: SIZE });
  const gated = new GatedBlockDevice(memory);
  const provider = new StaticExportProvider([{ name: 'vol1', device: gated }]);
  const { server, port } = await startTestServer(t, provider);
  const idle = await RawNbdClient.open(port);
  t.teardown(() => idle.destroy());
  const client = await RawNbdClient.open(port);
  t.teardown(() => client.destroy());
  await client.negotiate({ exportName: 'vol1' });
  client.request({ type: NBD_CMD_READ, flags: 0, handle: 1n, offset: 0, lengthBytes: 4096 });
  await waitFor(() => gated.waiting === 1, 'the read to be in flight');
  let closed = false;
  const closing = server.close().then(() => {
    closed = true;
  });
  await idle.closed;
  t.equal(closed, false, 'close waits for the in-flight read');
  gated.release();
  const reply = await client.readReply();
  t.equal(errorOf(reply), 0, 'the in-flight read is answered');
  await closing;
  await client.closed;
  t.equal(memory.stats.flushes, 1, 'the device was flushed');
  t.equal(provider.released, 1);
  await t.rejects(RawNbdClient.connect(port), 'no longer accepting');
});

t.test('close(aborted signal) hangs up at once', async (t) => {
  const gated = new GatedBlockDevice(new MemoryBlockDevice({ sizeBytes: SIZE }));
  const provider = new StaticExportProvider([{ name: 'vol1', device: gated }]);
  const { server, port } = await startTestServer(t, provider);
  const client = await RawNbdClient.open(port);
  await client.negotiate({ exportName: 'vol1' });
  client.request({ type: NBD_CMD_READ, flags: 0, handle: 1n, offset: 0, lengthBytes: 4096 });
  await waitFor(() => gated.waiting === 1, 'the read to be in flight');
  await server.close(AbortSignal.abort());
  await client.closed;
  t.equal(provider.released, 0, 'the handle waits for the read');
  gated.release();
  await waitFor(() => provider.released === 1, 'release after the read');
});

t.test('close() answers requests it has not started with ESHUTDOWN', async (t) => {
  const memory = new MemoryBlockDevice({ sizeBytes: SIZE });
  const gated = new GatedBlockDevice(memory);
  const provider = new StaticExportProvider([{ name: 'vol1', device: gated }]);
  const { server, port } = await startTestServer(t, provider, { maxInFlightRequests: 1 });
  const client = await RawNbdClient.open(port);
  t.teardown(() => client.destroy());
  await client.negotiate({ exportName: 'vol1' });
  for (let handle = 1n; handle <= 3n; handle += 1n) {
    client.request({ type: NBD_CMD_READ, flags: 0, handle, offset: 0, lengthBytes: 4096 });
  }
  await waitFor(() => gated.waiting === 1, 'the first read to be in flight');
  const closing = server.close();
  const refused = [await client.readReply(), await client.readReply()];
  t.same(
    refused.map((reply) => [reply.handle, errorOf(reply)]),
    [
      [2n, NBD_ESHUTDOWN],
      [3n, NBD_ESHUTDOWN],
    ],
    'queued requests are refused at once (proto.md: ESHUTDOWN)',
  );
  gated.release();
  const served = await client.readReply();
  t.same([served.handle, errorOf(served)], [1n, 0], 'the in-flight read completes normally');
  await closing;
  await client.closed;
  t.equal(memory.stats.flushes, 1);
  t.equal(provider.released, 1);
});

t.test('startNbdServer refuses a busy port and invalid limits', async (t) => {
  const provider = new StaticExportProvider([]);
  const { port } = await startTestServer(t, provider);
  const logger = pino({ level: 'silent' });
  await t.rejects(startNbdServer({ host: '127.0.0.1', port }, { exports: provider, logger }), { code: 'IO_ERROR' });
  await t.rejects(
    startNbdServer({ host: '127.0.0.1', port: 0, limits: { maxInFlightRequests: 0 } }, { exports: provider, logger }),
    { code: 'CONFIG_INVALID' },
  );
  await t.rejects(
    startNbdServer({ host: '127.0.0.1', port: 0, limits: { maxPayloadBytes: 2 ** 32 } }, { exports: provider, logger }),
    { code: 'CONFIG_INVALID' },
  );
});
